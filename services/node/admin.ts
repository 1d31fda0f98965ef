// The Socket.IO Admin UI's server side, on the `/admin` namespace behind basic authentication
// (user `admin`, the password from ADMIN_PASSWORD or RUN_DIR/admin-password). Point the Admin
// UI (https://admin.socket.io, or a self-hosted copy) at the kit's URL, path /admin, and add its
// origin to ALLOWED_ORIGINS.
import { InMemoryStore, instrument } from '@socket.io/admin-ui';
import type { Server } from 'socket.io';
import type { Redis } from './redis.ts';

/** Admin sessions shared by all nodes. The package's RedisStore expects a callback-style client
 * (ioredis, node-redis 3), and its abstract Store is not exported, hence InMemoryStore as base. */
class NodeRedisStore extends InMemoryStore {
  constructor(private readonly redis: Redis) {
    super();
  }

  override async doesSessionExist(sessionId: string): Promise<boolean> {
    return (await this.redis.exists(`kit-admin#${sessionId}`)) === 1;
  }

  override saveSession(sessionId: string): void {
    this.redis.set(`kit-admin#${sessionId}`, '1', { EX: 86_400 }).catch(() => {});
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

  getValuesAndClear(): AggregatedEvent[] {
    const values = [...this.finished, ...this.inner.getValuesAndClear()];
    this.finished = [];
    return values;
  }
}

export function instrumentAdmin(
  io: Server,
  redis: Redis,
  nodeId: string,
  passwordHash: string,
): void {
  instrument(io, {
    namespaceName: '/admin',
    auth: { type: 'basic', username: 'admin', password: passwordHash },
    mode: 'production',
    serverId: nodeId,
    store: new NodeRedisStore(redis),
  });
  const instrumented = io as unknown as { _eventBuffer?: EventBuffer };
  if (typeof instrumented._eventBuffer?.getValuesAndClear === 'function') {
    const buffer = new TallyingEventBuffer(instrumented._eventBuffer);
    instrumented._eventBuffer = buffer;
    setInterval(() => buffer.roll(), 1000).unref();
  }
}
