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
}
