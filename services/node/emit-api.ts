import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Server } from 'socket.io';
import { clientAddress } from './client-address.ts';
import { settle } from './continuity.ts';
import type { NodeMetrics } from './metrics.ts';
import { KeyedLimiter } from './rate-limit.ts';
import type { Redis, StreamOf } from './redis.ts';

// Names Socket.IO reserves; emitting one throws inside socket.io, so they are refused up front.
const RESERVED = new Set([
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
]);

/**
 * Requests without the right token, per client address: what nginx's per-address limit on the
 * rest of the site allows (nginx does not limit /api/emit, so that a backend with the token is
 * never throttled by its address).
 */
const UNAUTHENTICATED = { perSecond: 50, burst: 200 } as const;

/**
 * How long an Idempotency-Key is remembered once its event went out: a caller may retry that long
 * without a second delivery. While the first request with a key is in flight its key is held for
 * at most PENDING_MS (a node that dies then frees it).
 */
export const IDEMPOTENCY = { rememberMs: 10 * 60_000, pendingMs: 10_000 } as const;
/** A publish not answered by then is given up (503), within the pending time of its key. */
const PUBLISH_DEADLINE_MS = 8_000;
/** Marks a key done only if the claim is still this request's (not a later one's). */
const MARK_DONE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
end
return false`;
/** Frees a key whose event was lost, so that a retry with it publishes the event again. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return false`;
const LOST = 'lost in a Redis failover before a replica had it, retry';
const KEY_FORMAT = /^[\w.:-]{1,128}$/;

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

/** The adapters built on socket.io-adapter's ClusterAdapter (sharded, streams) publish here. */
type Publishing = { publishAndReturnOffset?: (message: unknown) => Promise<string> };

/** What became of an emit: lost (a failover dropped it), or not known (its Redis did not say). */
class NotPublished extends Error {
  constructor(readonly outcome: 'lost' | 'unknown') {
    super(outcome);
  }
}

/**
 * Emits and resolves once the adapter has handed the event to Redis (rejecting if Redis refused
 * it), so that 202 means "on its way to every node", not "seen by this one". io.emit() does not
 * say: socket.io-adapter's broadcast logs a failed publish and delivers locally anyway. The
 * pub/sub adapter (ADAPTER=redis) publishes without a result to wait for: there 202 means
 * accepted by this node, as before.
 */
function emitter(
  io: Server,
): (event: string, data: unknown, room?: string) => Promise<string | undefined> {
  const adapter = io.of('/').adapter as unknown as Publishing;
  const original = adapter.publishAndReturnOffset?.bind(adapter);
  let waiting: ((published: Promise<string>) => void) | undefined;
  if (original) {
    adapter.publishAndReturnOffset = (message) => {
      const published = original(message);
      const waiter = waiting;
      waiting = undefined;
      waiter?.(published);
      return published;
    };
  }
  return async (event, data, room) => {
    // broadcast() calls publishAndReturnOffset before its first await: within emit() below.
    let published: Promise<string> | undefined;
    waiting = (p) => {
      published = p;
    };
    (room === undefined ? io : io.to(room)).emit(event, data);
    waiting = undefined;
    return published;
  };
}

/** POST /api/emit: an event from outside Socket.IO to every matching socket on every node. */
export function registerEmitApi(
  app: FastifyInstance,
  io: Server,
  token: string,
  metrics: NodeMetrics,
  redis: Redis,
  streams: StreamOf | undefined,
): void {
  const strangers = new KeyedLimiter(UNAUTHENTICATED.perSecond, UNAUTHENTICATED.burst);
  const emit = emitter(io);
  const stream = streams?.('/');
  const answer = (reply: FastifyReply, status: number, body: object) => {
    metrics.emitsApi.inc({ status: String(status) });
    return reply.code(status).send(body);
  };
  const retryLater = (reply: FastifyReply, error: string, afterS = 1) => {
    reply.header('retry-after', String(afterS));
    return answer(reply, 503, { error });
  };
  /**
   * Resolves once the event is on its way to every node. With the streams adapter on a Redis
   * Cluster, once it is on a replica too: a 202 then survives a failover of the stream's master.
   * Rejects with NotPublished('lost') when a failover dropped it, 'unknown' when Redis did not
   * answer within the deadline.
   */
  const published = async (event: string, data: unknown, room?: string) => {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NotPublished('unknown')), PUBLISH_DEADLINE_MS);
    });
    const offset = await Promise.race([emit(event, data, room), late])
      .catch(() => {
        throw new NotPublished('unknown');
      })
      .finally(() => clearTimeout(timer));
    if (stream === undefined || offset === undefined) return;
    const kept = await settle(stream, offset, PUBLISH_DEADLINE_MS - (Date.now() - started));
    if (kept !== true) throw new NotPublished(kept === false ? 'lost' : 'unknown');
  };

  app.post<{ Body: EmitBody }>('/api/emit', {
    schema: { body: bodySchema },
    // Authentication runs before the body is read, so an unauthenticated caller learns nothing
    // about the body format and costs no parsing.
    onRequest: async (request, reply) => {
      if (tokenMatches(request.headers.authorization, token)) return;
      if (!strangers.take(clientAddress(request.raw))) {
        return answer(reply, 429, { error: 'too many requests' });
      }
      return answer(reply, 401, { error: 'missing or wrong bearer token' });
    },
    handler: async (request, reply) => {
      const { event, data, room } = request.body;
      if (RESERVED.has(event)) {
        return answer(reply, 400, { error: `"${event}" is a reserved event name` });
      }
      const idempotencyKey = request.headers['idempotency-key'];
      if (idempotencyKey === undefined) {
        try {
          await published(event, data, room);
        } catch (error) {
          const lost = (error as NotPublished).outcome === 'lost';
          return retryLater(reply, lost ? LOST : 'not published (Redis unavailable), retry');
        }
        return answer(reply, 202, { ok: true });
      }
      if (typeof idempotencyKey !== 'string' || !KEY_FORMAT.test(idempotencyKey)) {
        return answer(reply, 400, {
          error: 'Idempotency-Key must be 1 to 128 letters, digits, or _ . : -',
        });
      }
      // One record per key, on its own slot in a cluster: `pending` while the first request
      // with it publishes, `done` once it did.
      const record = `kit:emit:{${idempotencyKey}}`;
      const claim = `pending:${randomUUID()}`;
      let claimed: string | null;
      try {
        claimed = await redis.set(record, claim, { NX: true, PX: IDEMPOTENCY.pendingMs });
      } catch {
        return retryLater(reply, 'storage unavailable, retry');
      }
      if (claimed !== 'OK') {
        const state = await redis.get(record).catch(() => null);
        if (state === 'done') return answer(reply, 202, { ok: true, duplicate: true });
        reply.header('retry-after', '1');
        return answer(reply, 409, { error: 'a request with this Idempotency-Key is in flight' });
      }
      try {
        await published(event, data, room);
      } catch (error) {
        if ((error as NotPublished).outcome === 'lost') {
          await redis.eval(RELEASE, { keys: [record], arguments: [claim] }).catch(() => undefined);
          return retryLater(reply, LOST);
        }
        // The key stays claimed until its pending time ends: Redis may have taken the event
        // without this node hearing so, and a retry meanwhile must not publish it again.
        return retryLater(
          reply,
          'not published (Redis unavailable), retry with the same key',
          IDEMPOTENCY.pendingMs / 1000,
        );
      }
      // Failing to record it costs a possible second delivery on a retry, not this one.
      await redis
        .eval(MARK_DONE, { keys: [record], arguments: [claim, String(IDEMPOTENCY.rememberMs)] })
        .catch(() => undefined);
      return answer(reply, 202, { ok: true });
    },
  });
}
