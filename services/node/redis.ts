import type { FastifyBaseLogger } from 'fastify';
import { createClient, type RedisClientType } from 'redis';

export type Redis = RedisClientType;

export interface RedisClients {
  /** Publishes for the adapter. Its offline queue stays on: what is published while Redis is
   * away is sent when it returns, and the adapter never sees a rejected publish. */
  readonly pub: Redis;
  /** Subscribes for the adapter. node-redis re-subscribes after a reconnect
   * (test/integration/redis-restart.test.ts proves it; see socket.io#4845, redis-adapter#446). */
  readonly sub: Redis;
  /** Handed to the application. Offline queue off, so a command fails at once while Redis is
   * away instead of hanging an acknowledgement until it returns. */
  readonly data: Redis;
  ready(): boolean;
  notReadyReason(): string | undefined;
  close(): Promise<void>;
}

export interface RedisEvents {
  onError(client: string, error: Error): void;
  onReady(client: string): void;
}

// Reconnect quickly at first, then at most every 2 s: an outage should end for the nodes within
// a couple of seconds of Redis answering again.
const reconnectStrategy = (retries: number): number => Math.min(100 * 2 ** retries, 2000);

export async function connectRedis(
  url: string,
  log: FastifyBaseLogger,
  events: RedisEvents,
): Promise<RedisClients> {
  const make = (name: string, disableOfflineQueue: boolean): Redis => {
    const client = createClient({
      url,
      disableOfflineQueue,
      pingInterval: 5000,
      socket: { reconnectStrategy, connectTimeout: 3000 },
    }) as Redis;
    let lastLogged = 0;
    client.on('error', (error: Error) => {
      events.onError(name, error);
      // A Redis outage raises an error per reconnect attempt; one line a few seconds is enough.
      if (Date.now() - lastLogged > 5000) {
        lastLogged = Date.now();
        log.warn({ client: name, err: error.message }, 'redis client error');
      }
    });
    client.on('ready', () => {
      events.onReady(name);
      log.info({ client: name }, 'redis client ready');
    });
    return client;
  };

  const pub = make('pub', false);
  const sub = make('sub', false);
  const data = make('data', true);
  const clients = { pub, sub, data } as const;
  // connect() keeps retrying while Redis is away. A node still starts and serves its own
  // clients then, reporting not-ready until Redis answers.
  const connected = Promise.all(Object.values(clients).map((c) => c.connect()));
  connected.catch((error: Error) => log.error({ err: error.message }, 'redis connect failed'));
  await Promise.race([connected, new Promise((r) => setTimeout(r, 5000).unref())]);

  return {
    ...clients,
    ready: () => pub.isReady && sub.isReady && data.isReady,
    notReadyReason() {
      const down = Object.entries(clients)
        .filter(([, c]) => !c.isReady)
        .map(([name]) => name);
      return down.length === 0 ? undefined : `redis unreachable (${down.join(', ')} client)`;
    },
    async close() {
      await Promise.allSettled(
        // quit() waits for Redis to answer, which during an outage would hold up every drain.
        Object.values(clients).map((c) =>
          c.isReady ? c.quit() : c.isOpen ? c.disconnect() : undefined,
        ),
      );
    },
  };
}
