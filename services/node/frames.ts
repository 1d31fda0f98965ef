// What a broadcast costs per recipient: its frame, made once, is one buffer, written straight to
// each recipient's WebSocket.
//
// One buffer. socket.io-adapter encodes a broadcast's WebSocket frame once for all its
// recipients, as two buffers: the frame header and the payload. ws writes such a pair with cork,
// write, write, uncork, which Node's stream turns into a writev through its buffered-chunks path,
// for every recipient. Joined once per broadcast, the pair is one buffer, and ws writes it with a
// single write. Measured with `npm run bench:ab` (500 subscribers, 50 publications/s, 4 A B B A runs):
// 0.95 × the server CPU per delivery, every pair lower.
//
// The frame is made by the adapter's `_encode`, which socket.io-adapter keeps private: an
// adapter without it is left as it is (test/unit/frames.test.ts fails if that ever happens).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Namespace, Server } from 'socket.io';
import { UNSENT_LIMIT_BYTES } from './engine-limits.ts';

interface PacketOptions {
  wsPreEncodedFrame?: Buffer[];
}
interface Encoding {
  _encode?(packet: unknown, options: PacketOptions): unknown;
}

/** `factory` (an adapter class or the function the Redis adapters return), its frames joined. */
export function withOneBufferFrames<F>(factory: F): F {
  const Make = factory as unknown as new (nsp: Namespace) => Encoding;
  // Socket.IO calls the factory with `new`: a function that returns an object gives that object.
  function make(nsp: Namespace): Encoding {
    const adapter = new Make(nsp);
    const encode = adapter._encode;
    if (typeof encode !== 'function') return adapter;
    adapter._encode = function (this: Encoding, packet, options) {
      const encoded = encode.call(this, packet, options);
      const frame = options.wsPreEncodedFrame;
      if (frame?.length === 2) options.wsPreEncodedFrame = [Buffer.concat(frame)];
      return encoded;
    };
    return adapter;
  }
  return make as unknown as F;
}

// Straight to the WebSocket. Socket.IO hands every recipient's copy of a broadcast to
// Engine.IO, which makes it a packet, queues it, emits four events, hands the queue to the
// transport and waits for the write's callback before it takes the next: per recipient, more
// than the write itself (measured with `npm run bench:ab`, 500 subscribers at 50 publications/s,
// 4 A B B A runs: 27.5 against 31.1 s of server CPU per million deliveries, p99 33.1 against
// 36.4 ms).
// Where nothing is waiting (no packet queued, the transport free, nothing left unsent in the
// socket), that frame is written at once, as the transport would write it; anywhere else it
// takes Engine.IO's way, behind what waits, so a client's order is kept either way. A client
// that does not read soon has output left unsent, and its copies go to Engine.IO's queue, where
// the unsent-output bound (engine-limits.ts) sees them; so does a frame larger than that bound.
// A failed write closes the WebSocket, which ends the Engine.IO session, as Engine.IO's own
// write error would. Listeners on Engine.IO's packetCreate, flush and drain events do not see
// the frames written this way; the kit's own (/metrics, the Admin UI) are told through `count`.

interface WebSocketLike {
  readyState: number;
  _sender?: { sendFrame?(list: Buffer[]): void };
  _socket?: { writableLength: number };
}
interface EngineSocket {
  readyState: string;
  writeBuffer: unknown[];
  transport: {
    name: string;
    writable: boolean;
    perMessageDeflate?: unknown;
    socket?: WebSocketLike;
  };
}
interface ClientLike {
  server: Server;
  conn: EngineSocket;
  writeToEngine(encoded: unknown, options: PacketOptions & { volatile?: boolean }): void;
}

/** ws's readyState of an open WebSocket. */
const OPEN = 1;
/** What a frame written straight to a client of a server is counted in: its payload's bytes. */
export type CountOutput = (payloadBytes: number) => void;
/** The servers whose clients take broadcast frames straight to their WebSocket. */
const counting = new WeakMap<Server, CountOutput>();
const DIRECT = Symbol('kit.directBroadcasts');

/**
 * Lets `io`'s clients take broadcast frames straight to their WebSocket when nothing waits
 * before them, `count` told of each (Engine.IO's packetCreate, which /metrics and the Admin UI
 * count, sees only the others). Other servers in the process keep Engine.IO's way.
 */
export function writeBroadcastsDirectly(io: Server, count: CountOutput): void {
  counting.set(io, count);
  const client = socketIoClient()?.prototype as (ClientLike & Record<symbol, boolean>) | undefined;
  // A socket.io that moved or renamed it keeps Engine.IO's way (and fails frames.test.ts).
  const viaEngine = client?.writeToEngine;
  if (!client || typeof viaEngine !== 'function' || client[DIRECT]) return;
  client[DIRECT] = true;
  client.writeToEngine = function (this: ClientLike, encoded, options) {
    const frame = options.wsPreEncodedFrame;
    const bytes = frame?.length === 1 ? frame[0] : undefined;
    const count =
      bytes && bytes.length <= UNSENT_LIMIT_BYTES ? counting.get(this.server) : undefined;
    if (frame && bytes && count) {
      const conn = this.conn;
      const transport = conn.transport;
      const ws = transport.socket;
      if (
        conn.readyState === 'open' &&
        conn.writeBuffer.length === 0 &&
        transport.name === 'websocket' &&
        transport.writable &&
        !transport.perMessageDeflate &&
        ws?.readyState === OPEN &&
        typeof ws._sender?.sendFrame === 'function' &&
        ws._socket?.writableLength === 0
      ) {
        ws._sender.sendFrame(frame);
        count(payloadBytes(bytes));
        return;
      }
    }
    viaEngine.call(this, encoded, options);
  };
}

/** A server frame's payload less Engine.IO's one-byte packet type: the Socket.IO packet. */
function payloadBytes(frame: Buffer): number {
  const length = (frame[1] as number) & 0x7f;
  return frame.length - (length < 126 ? 2 : length === 126 ? 4 : 10) - 1;
}

/** socket.io's Client class, whose writeToEngine every packet to a client passes. */
function socketIoClient(): { prototype: ClientLike } | undefined {
  const require = createRequire(import.meta.url);
  try {
    const dist = dirname(require.resolve('socket.io'));
    return (require(join(dist, 'client.js')) as { Client?: { prototype: ClientLike } }).Client;
  } catch {
    return undefined;
  }
}
