// A broadcast's PUBLISH, made while Redis answers, carries no command timeout: node-redis 6 gives
// every command an AbortSignal.timeout of its own (a timer, and 5 s later an exception and an
// event), which cost a node more than the rest of the publish at a few thousand publications a
// second. One made while Redis is away keeps the 5 s bound in node-redis's offline queue.
// Real Redis, the node's own connectRedis and a real Socket.IO server on its adapter.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { connectRedis, type RedisClients } from '../../services/node/redis.ts';
import { waitFor } from '../harness/kit.ts';
import { type TestRedis, testRedis } from '../harness/redis.ts';

const KEY = 'timers-test';

/** How many AbortSignal.timeout calls `work` makes. */
async function timersMadeBy(work: () => Promise<unknown> | unknown): Promise<number> {
  const original = AbortSignal.timeout;
  let made = 0;
  AbortSignal.timeout = (ms: number) => {
    made++;
    return original.call(AbortSignal, ms);
  };
  try {
    await work();
  } finally {
    AbortSignal.timeout = original;
  }
  return made;
}

describe("the adapter's publications", { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let clients: RedisClients;
  let io: Server;
  let listener: ReturnType<typeof createClient>;
  const received: string[] = [];

  before(async () => {
    redis = await testRedis();
    await redis.start();
    const log = Fastify({ logger: { level: 'silent' } }).log;
    clients = await connectRedis(
      { redisUrl: redis.url, redisCluster: undefined, adapter: 'redis', recovery: undefined },
      log,
      { onError() {}, onReady() {} },
    );
    io = new Server({ adapter: clients.adapter(KEY) });
    listener = createClient({ url: redis.url, socket: { reconnectStrategy: () => 100 } });
    listener.on('error', () => {});
    await listener.connect();
    await listener.pSubscribe(`${KEY}#*`, (_message, channel) => received.push(channel));
  });
  after(async () => {
    // io.close() would also close an Engine.IO server, which a Server never attached has not.
    await io?.of('/').adapter.close();
    await clients?.close();
    listener?.destroy();
    await redis?.cleanup();
  });

  it('go out without a command timer while Redis answers, and arrive', async () => {
    const made = await timersMadeBy(() => {
      for (let i = 0; i < 50; i++) io.to(`room-${i}`).emit('m', i);
    });
    assert.equal(made, 0);
    await waitFor('50 publications at the listener', () => received.length >= 50);
    assert.deepEqual(
      received.slice(0, 50),
      Array.from({ length: 50 }, (_, i) => `${KEY}#/#room-${i}#`),
    );
    // The spy sees node-redis's timers: any other command still makes one.
    assert.equal(await timersMadeBy(() => clients.data.ping()), 1);
  });

  it('keep the 5 s bound while Redis is away, and lose it again once it is back', async () => {
    await redis.kill();
    await waitFor('the publishing client to notice', () => !clients.pub.isReady);
    assert.equal(
      await timersMadeBy(() => io.to('while-away').emit('m', 0)),
      1,
      'a publication made while Redis is away waits with a timeout',
    );
    await redis.start();
    await waitFor('the publishing client back', () => clients.pub.isReady, 15_000);
    await waitFor('the listener back', () => listener.isReady, 15_000);
    received.length = 0;
    const made = await timersMadeBy(() => io.to('after').emit('m', 1));
    assert.equal(made, 0);
    await waitFor('the publication after the restart', () => received.includes(`${KEY}#/#after#`));
  });
});
