// The room fan-out every Socket.IO variant runs: a client joins a room, a publisher's `pub`
// goes to every member as `msg`. The payload carries the publisher's clock, so subscribers
// measure latency. Used as the kit's APP_MODULE and by the plain and cluster servers.
import type { FastifyInstance } from 'fastify';
import type { Server } from 'socket.io';
import { directRequest, heapAfterGc } from './heap.ts';

export interface Publication {
  room: string;
  /** Publisher's monotonic clock in microseconds (same clock in every process on a host). */
  t: number;
  pad?: string;
}

export function attachFanout(io: Server): void {
  io.on('connection', (socket) => {
    socket.on('join', (room: unknown, ack?: unknown) => {
      if (typeof room === 'string') socket.join(room);
      if (typeof ack === 'function') ack({ ok: true });
    });
    socket.on('pub', (message: Publication) => {
      if (typeof message?.room === 'string') io.to(message.room).emit('msg', message);
    });
  });
}

/** APP_MODULE form, for the kit variants; `GET /bench/heap` on a node's own port. */
export default function fanoutApp({ io, app }: { io: Server; app: FastifyInstance }): void {
  attachFanout(io);
  app.get('/bench/heap', async (request, reply) => {
    if (!directRequest(request.raw)) return reply.code(403).send({ error: 'direct only' });
    return { heapUsed: heapAfterGc(), clients: io.engine.clientsCount };
  });
}
