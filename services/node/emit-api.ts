import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Server } from 'socket.io';
import type { NodeMetrics } from './metrics.ts';

// Names Socket.IO reserves; emitting one throws inside socket.io, so they are refused up front.
const RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

interface EmitBody {
  event: string;
  data?: unknown;
  room?: string;
}

const bodySchema = {
  type: 'object',
  required: ['event'],
  additionalProperties: false,
  properties: {
    event: { type: 'string', minLength: 1, maxLength: 128 },
    data: {},
    room: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;

function tokenMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length));
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** POST /api/emit: an event from outside Socket.IO to every matching socket on every node. */
export function registerEmitApi(
  app: FastifyInstance,
  io: Server,
  token: string,
  metrics: NodeMetrics,
): void {
  app.post<{ Body: EmitBody }>('/api/emit', {
    schema: { body: bodySchema },
    // Authentication runs before the body is read, so an unauthenticated caller learns nothing
    // about the body format and costs no parsing.
    onRequest: async (request, reply) => {
      if (!tokenMatches(request.headers.authorization, token)) {
        metrics.emitsApi.inc({ status: '401' });
        return reply.code(401).send({ error: 'missing or wrong bearer token' });
      }
    },
    handler: async (request, reply) => {
      const { event, data, room } = request.body;
      if (RESERVED.has(event)) {
        metrics.emitsApi.inc({ status: '400' });
        return reply.code(400).send({ error: `"${event}" is a reserved event name` });
      }
      (room === undefined ? io : io.to(room)).emit(event, data);
      metrics.emitsApi.inc({ status: '202' });
      return reply.code(202).send({ ok: true });
    },
  });
}
