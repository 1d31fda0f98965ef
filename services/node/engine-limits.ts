// What one Engine.IO connection may cost a node: the output it leaves unsent, and how often its
// address may open new sessions. Both are checked at the engine, so they hold for every
// application and namespace.
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { Server } from 'socket.io';
import { clientAddress } from './client-address.ts';
import type { NodeMetrics } from './metrics.ts';
import { KeyedLimiter } from './rate-limit.ts';

/**
 * Output a connection may leave queued behind a write the client has not yet taken. A client
 * that stops reading would otherwise make the node buffer everything sent to it (a reader that
 * sent 20 CONNECTs and read nothing grew a node's RSS from 110 to 191 MB). Counted between two
 * moments the transport took the queue, so a burst to a client that reads is not held against
 * it; a single packet larger than this would be (maxHttpBufferSize bounds what clients send,
 * the application what it sends).
 */
export const UNSENT_LIMIT_BYTES = 4 * 1024 * 1024;

/** New sessions per client address, as nginx allows them (nginx/nginx.conf.template). */
export const HANDSHAKES = { perSecond: 20, burst: 200 } as const;

interface EnginePacket {
  type: string;
  data?: unknown;
}

interface Closable {
  readonly transport: unknown;
  close(discard?: boolean): void;
}

interface EngineConnection extends Closable {
  on(event: 'packetCreate', listener: (packet: EnginePacket) => void): void;
  on(event: 'drain', listener: () => void): void;
}

const sizeOf = (data: unknown): number =>
  typeof data === 'string'
    ? data.length
    : data instanceof ArrayBuffer || ArrayBuffer.isView(data)
      ? data.byteLength
      : 0;

/** Closes at once, dropping what is queued (a plain close waits for the queue to drain). */
export function closeNow(conn: Closable): void {
  conn.close(true);
  // A WebSocket whose peer does not read would hold its buffer through the close handshake.
  (conn.transport as { socket?: { terminate?(): void } }).socket?.terminate?.();
}

/**
 * Per connection, one listener on every packet Engine.IO writes: the Socket.IO packet tally for
 * /metrics (broadcast frames written past Engine.IO are counted where they are written,
 * frames.ts), and the unsent-output bound.
 */
export function watchOutput(io: Server, metrics: NodeMetrics, log: FastifyBaseLogger): void {
  const tally = metrics.packetsSent;
  io.engine.on('connection', (conn: EngineConnection) => {
    let unsent = 0;
    conn.on('packetCreate', (packet) => {
      if (packet.type === 'message') tally.count += 1;
      unsent += sizeOf(packet.data);
      if (unsent > UNSENT_LIMIT_BYTES) {
        unsent = 0;
        metrics.slowClientsClosed.inc();
        log.warn({ unsentBytes: UNSENT_LIMIT_BYTES }, 'client does not read its output; closing');
        closeNow(conn);
      }
    });
    // Engine.IO hands its whole queue to the transport whenever the previous write is done
    // (at once when the transport is free): what piles up between two such moments is unsent.
    conn.on('drain', () => {
      unsent = 0;
    });
  });
}

/** Engine.IO asks this for every new session (never for requests inside one). */
export function handshakeLimiter(): (req: IncomingMessage) => boolean {
  const limiter = new KeyedLimiter(HANDSHAKES.perSecond, HANDSHAKES.burst);
  return (req) => limiter.take(clientAddress(req));
}
