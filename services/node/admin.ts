// The Socket.IO Admin UI's server side, on the `/admin` namespace, only when ADMIN_PASSWORD is
// set (user `admin`). Point the Admin UI (https://admin.socket.io, or a self-hosted copy) at the
// kit's URL, path /admin, and add its origin to ALLOWED_ORIGINS.
import { randomBytes } from 'node:crypto';
import { InMemoryStore, instrument } from '@socket.io/admin-ui';
import type { Server, Socket } from 'socket.io';
import { passwordChecker } from './admin-auth.ts';
import { clientAddress } from './client-address.ts';
import { KeyedLimiter } from './rate-limit.ts';
import type { Redis } from './redis.ts';

/** Failed logins one Engine.IO connection may make before it is closed. */
const FAILURES_PER_CONNECTION = 3;
/** Failed logins per client address: 10 at once, then one a minute. */
const FAILURES_PER_ADDRESS = { burst: 10, perSecond: 1 / 60 } as const;

/** Admin sessions shared by all nodes. The package's RedisStore expects a callback-style client
 * (ioredis, node-redis 3), and its abstract Store is not exported, hence InMemoryStore as base. */
class NodeRedisStore extends InMemoryStore {
  constructor(private readonly redis: Redis) {
    super();
  }

  override async doesSessionExist(sessionId: string): Promise<boolean> {
    if (typeof sessionId !== 'string' || !/^[0-9a-f]{16,64}$/.test(sessionId)) return false;
    return (await this.redis.exists(`kit-admin#${sessionId}`)) === 1;
  }

  override saveSession(sessionId: string): void {
    this.redis
      .set(`kit-admin#${sessionId}`, '1', { expiration: { type: 'EX', value: 86_400 } })
      .catch(() => {});
  }
}

interface AggregatedEvent {
  timestamp: number;
  type: string;
  subType?: string;
  count: number;
}

interface EventBuffer {
  push(type: string, subType?: string, count?: number): void;
  getValuesAndClear(): AggregatedEvent[];
}

const PER_PACKET = ['packetsOut', 'bytesOut', 'packetsIn', 'bytesIn'] as const;
type PerPacket = (typeof PER_PACKET)[number];

/**
 * The Admin UI charts packets and bytes in and out per second. Its own buffer (admin-ui 0.5.1,
 * `io._eventBuffer`) builds a Date and a string key and looks up a Map twice for every packet
 * written to every client: about 1 µs per delivered message (with the former per-packet
 * prom-client call; measured), a fifth of what a node spends on one in the room fan-out bench.
 * This one takes the same calls and keeps those four counts as additions; `roll`, once a
 * second, closes the second. Other events go to the package's buffer.
 */
export class TallyingEventBuffer implements EventBuffer {
  private counts: Record<PerPacket, number> = {
    packetsOut: 0,
    bytesOut: 0,
    packetsIn: 0,
    bytesIn: 0,
  };
  private finished: AggregatedEvent[] = [];

  constructor(private readonly inner: EventBuffer) {}

  push(type: string, subType?: string, count = 1): void {
    if (type in this.counts) this.counts[type as PerPacket] += count;
    else this.inner.push(type, subType, count);
  }

  /** Closes the second that ends at `now`; only closed seconds are handed over. */
  roll(now = Date.now()): void {
    const timestamp = Math.floor(now / 1000) * 1000 - 1000;
    for (const type of PER_PACKET) {
      const count = this.counts[type];
      if (count > 0) this.finished.push({ timestamp, type, count });
      this.counts[type] = 0;
    }
  }

  /** A packet of `bytes` written to a client past Engine.IO (frames.ts), which admin-ui misses. */
  countOut(bytes: number): void {
    this.counts.packetsOut += 1;
    this.counts.bytesOut += bytes;
  }

  getValuesAndClear(): AggregatedEvent[] {
    const values = [...this.finished, ...this.inner.getValuesAndClear()];
    this.finished = [];
    return values;
  }
}

/** Socket.IO sends a refusal on the next tick, and not at all once the connection is closing. */
function closeAfterAnswer(socket: Socket): void {
  setImmediate(() => socket.conn.close());
}

/**
 * The login, in front of admin-ui (whose own is switched off): a saved session id, or user
 * `admin` with the password. Every path ends in `next()`, so no socket is left half-connected,
 * and a connection that keeps guessing is closed.
 */
function authenticate(store: NodeRedisStore, passwordHash: string) {
  const passwordMatches = passwordChecker(passwordHash);
  const failures = new WeakMap<object, number>();
  const failuresOf = new KeyedLimiter(FAILURES_PER_ADDRESS.perSecond, FAILURES_PER_ADDRESS.burst);
  return async (socket: Socket, next: (error?: Error) => void) => {
    const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
    const address = clientAddress(socket.request);
    if (failuresOf.exhausted(address)) {
      next(new Error('too many failed logins from this address, try later'));
      closeAfterAnswer(socket);
      return;
    }
    try {
      if (typeof auth.sessionId === 'string' && (await store.doesSessionExist(auth.sessionId))) {
        return next();
      }
    } catch {
      return next(new Error('storage unavailable'));
    }
    if (auth.username === 'admin' && passwordMatches(auth.password)) {
      const sessionId = randomBytes(16).toString('hex');
      store.saveSession(sessionId);
      socket.emit('session', sessionId);
      return next();
    }
    failuresOf.take(address);
    const failed = (failures.get(socket.conn) ?? 0) + 1;
    failures.set(socket.conn, failed);
    next(new Error('invalid credentials'));
    if (failed >= FAILURES_PER_CONNECTION) closeAfterAnswer(socket);
  };
}

/**
 * The Admin UI on `/admin`; gives what counts a packet written past Engine.IO in its charts
 * (frames.ts), when admin-ui's buffer is the one it knows.
 */
export function instrumentAdmin(
  io: Server,
  redis: Redis,
  nodeId: string,
  passwordHash: string,
): ((bytes: number) => void) | undefined {
  const store = new NodeRedisStore(redis);
  io.of('/admin').use(authenticate(store, passwordHash));
  instrument(io, {
    namespaceName: '/admin',
    auth: false,
    mode: 'production',
    serverId: nodeId,
    store,
  });
  const instrumented = io as unknown as { _eventBuffer?: EventBuffer };
  if (typeof instrumented._eventBuffer?.getValuesAndClear === 'function') {
    const buffer = new TallyingEventBuffer(instrumented._eventBuffer);
    instrumented._eventBuffer = buffer;
    setInterval(() => buffer.roll(), 1000).unref();
    return (bytes) => buffer.countOut(bytes);
  }
  return undefined;
}
