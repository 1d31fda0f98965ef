import type { ServerOptions } from 'socket.io';

/** Prefix of the adapter's pub/sub channels; an outside emitter must use the same. */
export const ADAPTER_KEY = 'kit';

/** Socket.IO settings the kit relies on; nginx's proxy_read_timeout is sized from the ping. */
export const SOCKET_OPTIONS = {
  pingInterval: 25_000,
  pingTimeout: 20_000,
  // 1 MB per packet: large enough for any chat payload, small enough that a client cannot make
  // a node buffer much. Oversized packets close that client's connection, nothing else.
  maxHttpBufferSize: 1_000_000,
  // Compression costs CPU per message on every node; chat payloads are small.
  perMessageDeflate: false,
  httpCompression: false,
} satisfies Partial<ServerOptions>;
