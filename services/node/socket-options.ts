import type { ServerOptions } from 'socket.io';

/** Prefix of the adapter's pub/sub channels; an outside emitter must use the same. */
export const ADAPTER_KEY = 'kit';

/**
 * Engine.IO's heartbeat for HEARTBEAT seconds: a ping every `seconds`, its pong awaited twice as
 * long. A client notices a node that went silent (its host lost, its network cut: no connection
 * is refused, nothing is closed) pingInterval + pingTimeout after the last ping, then reconnects
 * through nginx to a live node. The default, 2: 6 s at most, then up to 1.5 s of
 * socket.io-client's reconnect delay and 1 s of nginx's connect timeout, within the 10 s the kit
 * promises for a lost host (with 3 s + 5 s, a host's link cut brought its clients back after
 * 10.0-10.8 s). The price is a ping and a pong per client every 2 s: 10,000 idle connections cost
 * the nodes and nginx about a quarter of a core, with a node's pings sent together on a 50 ms tick
 * (heartbeat.ts; 40 % of a core with a timer per client), against nothing measurable at 25 s
 * (Socket.IO's default). At most 15 (a silent node noticed after 45 s): nginx's proxy_read_timeout (60 s)
 * must pass a ping and its pong.
 */
/** HEARTBEAT's default and bounds, the same on the operator's side and the node's. */
export const HEARTBEAT_S = { default: 2, min: 1, max: 15 } as const;

export function heartbeat(seconds: number): { pingInterval: number; pingTimeout: number } {
  return { pingInterval: seconds * 1000, pingTimeout: 2 * seconds * 1000 };
}

/** Socket.IO settings the kit relies on; nginx's proxy_read_timeout is sized from the ping. */
export const SOCKET_OPTIONS = {
  ...heartbeat(HEARTBEAT_S.default),
  // 1 MB per packet: large enough for any chat payload, small enough that a client cannot make
  // a node buffer much. Oversized packets close that client's connection, nothing else.
  maxHttpBufferSize: 1_000_000,
  // Compression costs CPU per message on every node; chat payloads are small.
  perMessageDeflate: false,
  httpCompression: false,
} satisfies Partial<ServerOptions>;
