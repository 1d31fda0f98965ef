// A broadcast's PUBLISH, made while Redis answers, carries no command timeout: node-redis 6 gives
// every command an AbortSignal.timeout of its own (a timer, and 5 s later an exception and an
// event), which cost a node more than the rest of the publish at a few thousand publications a
// second. The bound stays, shared: one made while Redis is away, or while the connection stalls,
// is dropped 5 to 7.5 s after it was made if still unwritten, never sent late.
// Real Redis, the node's own connectRedis and a real Socket.IO server on its adapter.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket, type Server as TcpServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import {
  connectRedis,
  PUBLICATION_BOUND_MS,
  type RedisClients,
} from '../../services/node/redis.ts';
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

/** The node's own Redis clients (connectRedis) and a Socket.IO server on their adapter; what the
 * publishing client reports failed, in `failures`. */
async function nodeOn(redisUrl: string, adapter: 'redis' | 'redis-sharded') {
  const failures: string[] = [];
  const clients = await connectRedis(
    { redisUrl, redisCluster: undefined, adapter, recovery: undefined },
    Fastify({ logger: { level: 'silent' } }).log,
    {
      onError(client, error) {
        if (client === 'pub') failures.push(error.message);
      },
      onReady() {},
    },
  );
  const io = new Server({ adapter: clients.adapter(KEY) });
  return {
    clients,
    io,
    failures,
    async close() {
      // io.close() would also close an Engine.IO server, which a Server never attached has not.
      await io.of('/').adapter.close();
      await clients.close();
    },
  };
}

/** A client of Redis itself that records the channel of every publication under KEY: the
 * pub/sub adapter's channels, or the sharded adapter's one per namespace ('static'). */
async function listenerAt(url: string, sharded = false) {
  const received: string[] = [];
  const client = createClient({ url, socket: { reconnectStrategy: () => 100 } });
  client.on('error', () => {});
  await client.connect();
  const record = (_message: string, channel: string) => received.push(channel);
  if (sharded) await client.sSubscribe(`${KEY}#/#`, record);
  else await client.pSubscribe(`${KEY}#*`, record);
  return { client, received };
}

describe("the adapter's publications", { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let node: Awaited<ReturnType<typeof nodeOn>> | undefined;
  let clients: RedisClients;
  let io: Server;
  let listener: Awaited<ReturnType<typeof listenerAt>>['client'] | undefined;
  let received: string[];
  let failures: string[];

  before(async () => {
    redis = await testRedis();
    await redis.start();
    node = await nodeOn(redis.url, 'redis');
    ({ clients, io, failures } = node);
    ({ client: listener, received } = await listenerAt(redis.url));
  });
  after(async () => {
    await node?.close();
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

  it('while Redis is away wait for it, dropped after the bound and never sent late', async () => {
    await redis.kill();
    await waitFor('the publishing client to notice', () => !clients.pub.isReady);
    const away = Date.now();
    assert.equal(await timersMadeBy(() => io.to('while-away').emit('m', 0)), 0);
    // Dropped 5 to 7.5 s after it was made: waited for up to 10 s.
    await waitFor(
      'the publication dropped and reported',
      () => failures.some((m) => m.includes('not written to Redis')),
      PUBLICATION_BOUND_MS * 2,
    );
    assert.ok(Date.now() - away >= PUBLICATION_BOUND_MS, 'dropped before the bound');
    received.length = 0;
    await redis.start();
    await waitFor('the clients back', () => clients.ready(), 15_000);
    await waitFor('the listener back', () => listener?.isReady, 15_000);
    const made = await timersMadeBy(() => io.to('after').emit('m', 1));
    assert.equal(made, 0);
    await waitFor('the publication after the restart', () => received.includes(`${KEY}#/#after#`));
    assert.ok(!received.includes(`${KEY}#/#while-away#`), 'the dropped publication went out late');
  });
});

describe("the sharded adapter's publications on one Redis", { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let node: Awaited<ReturnType<typeof nodeOn>> | undefined;
  let io: Server;
  let listener: Awaited<ReturnType<typeof listenerAt>>['client'] | undefined;
  let received: string[];

  before(async () => {
    redis = await testRedis();
    await redis.start();
    node = await nodeOn(redis.url, 'redis-sharded');
    ({ io } = node);
    ({ client: listener, received } = await listenerAt(redis.url, true));
  });
  after(async () => {
    await node?.close();
    listener?.destroy();
    await redis?.cleanup();
  });

  it('go out as SPUBLISH without a command timer, and arrive', async () => {
    const made = await timersMadeBy(() => {
      for (let i = 0; i < 20; i++) io.to(`room-${i}`).emit('m', i);
    });
    assert.equal(made, 0);
    await waitFor('20 publications at the listener', () => received.length >= 20);
  });
});

/**
 * A TCP forwarder in front of Redis that can stall: it stops reading what the node sends (so the
 * node's writes back up, as behind a network that went away without a reset) and refuses new
 * connections, until it is opened again.
 */
async function gateTo(port: number) {
  const pairs = new Set<[Socket, Socket]>();
  let server: TcpServer | undefined;
  const listen = async (on: number) => {
    server = createServer((inbound) => {
      const outbound = new (inbound.constructor as typeof Socket)();
      const pair: [Socket, Socket] = [inbound, outbound];
      pairs.add(pair);
      for (const socket of pair) {
        socket.on('error', () => {});
        socket.on('close', () => {
          pairs.delete(pair);
          for (const other of pair) other.destroy();
        });
      }
      outbound.connect(port, '127.0.0.1');
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    server.listen(on, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as { port: number }).port;
  };
  const own = await listen(0);
  return {
    port: own,
    stall() {
      server?.close();
      for (const [inbound, outbound] of pairs) {
        inbound.unpipe(outbound);
        outbound.unpipe(inbound);
        inbound.pause();
        outbound.removeAllListeners('close');
        outbound.destroy();
      }
    },
    reopen: () => listen(own),
    close() {
      server?.close();
      for (const pair of pairs) for (const socket of pair) socket.destroy();
    },
  };
}

describe('publications behind a stalled connection', { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let gate: Awaited<ReturnType<typeof gateTo>>;
  let node: Awaited<ReturnType<typeof nodeOn>> | undefined;
  let clients: RedisClients;
  let io: Server;
  let listener: Awaited<ReturnType<typeof listenerAt>>['client'] | undefined;
  let received: string[];
  let failures: string[];

  before(async () => {
    redis = await testRedis();
    await redis.start();
    gate = await gateTo(redis.port);
    node = await nodeOn(redis.url.replace(`:${redis.port}`, `:${gate.port}`), 'redis');
    ({ clients, io, failures } = node);
    ({ client: listener, received } = await listenerAt(redis.url));
  });
  after(async () => {
    await node?.close();
    listener?.destroy();
    gate?.close();
    await redis?.cleanup();
  });

  it('are dropped within the bound, not sent late when the connection comes back', async () => {
    io.to('before').emit('m', 0);
    await waitFor('a publication through the gate', () => received.includes(`${KEY}#/#before#`));

    // Redis stops reading while the client still counts as ready: 40 MB of publications back up
    // behind it, most still unwritten when node-redis gives the connection up (LIVENESS).
    gate.stall();
    const stalledAt = Date.now();
    assert.ok(clients.pub.isReady, 'the client has not noticed yet');
    const big = 'x'.repeat(1 << 20);
    for (let i = 0; i < 40; i++) io.to(`stalled-${i}`).emit('m', big);
    await waitFor('the publishing client to give the connection up', () => !clients.pub.isReady);
    await waitFor(
      'the unwritten publications dropped and reported',
      () => failures.some((m) => m.includes('not written to Redis')),
      PUBLICATION_BOUND_MS * 2,
    );
    assert.ok(Date.now() - stalledAt >= PUBLICATION_BOUND_MS, 'dropped before the bound');

    await gate.reopen();
    await waitFor('the clients back', () => clients.ready(), 15_000);
    io.to('after').emit('m', 1);
    await waitFor('a publication after the stall', () => received.includes(`${KEY}#/#after#`));
    assert.deepEqual(
      received.filter((channel) => channel.includes('stalled')),
      [],
      'a publication dropped during the stall went out once the connection came back',
    );
  });
});
