import type { ServerOptions } from 'socket.io';

/** Prefix of the adapter's pub/sub channels; an outside emitter must use the same. */
export const ADAPTER_KEY = 'kit';

/** Socket.IO settings the kit relies on; nginx's proxy_read_timeout is sized from the ping. */
export const SOCKET_OPTIONS = {
  // A client notices a node that went silent (its host lost, its network cut: no connection is
  // refused, nothing is closed) pingInterval + pingTimeout after the last ping, then reconnects
  // through nginx to a live node: 6 s at most, then up to 1.5 s of socket.io-client's reconnect
  // delay and 1 s of nginx's connect timeout, within the 10 s the kit promises for a lost host
  // (with 3 s + 5 s, a host's link cut brought its clients back after 10.0-10.8 s). Socket.IO's
  // defaults (25 s + 20 s) would leave those clients waiting 45 s. The cost is a ping and a pong
  // per client every 2 s instead of every 25 s.
  pingInterval: 2_000,
  pingTimeout: 4_000,
  // 1 MB per packet: large enough for any chat payload, small enough that a client cannot make
  // a node buffer much. Oversized packets close that client's connection, nothing else.
  maxHttpBufferSize: 1_000_000,
  // Compression costs CPU per message on every node; chat payloads are small.
  perMessageDeflate: false,
  httpCompression: false,
} satisfies Partial<ServerOptions>;
