// node-redis has a history of not restoring pub/sub subscriptions after a reconnect
// (socket.io#4845, redis-adapter#446). Kill Redis under connected clients, start it again, and
// cross-node delivery must come back by itself, every time.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { ask, clientsOnNets, closeAll, type PlacedClient } from '../harness/clients.ts';
import { type Kit, kitRedis, launchKit, waitFor } from '../harness/kit.ts';
import { type TestRedis, testRedis } from '../harness/redis.ts';

async function readiness(kit: Kit): Promise<number[]> {
  return Promise.all(
    kit.nodePorts.map(async (port) => (await fetch(`http://127.0.0.1:${port}/readyz`)).status),
  );
}

/** Broadcasts from the first client until one broadcast reaches every client; returns ms. */
async function crossNodeDeliveryResumes(clients: readonly PlacedClient[]): Promise<number> {
  const began = Date.now();
  const seen = clients.map(() => new Set<number>());
  clients.forEach((c, i) => {
    c.socket.on('broadcast', (m: { payload: number }) => seen[i]?.add(m.payload));
  });
  try {
    for (let k = 0; ; k++) {
      const sender = clients[0]?.socket as Socket;
      if (sender.connected) sender.emit('broadcast', k, () => {});
      await new Promise((r) => setTimeout(r, 100));
      const everywhere = [...(seen[0] ?? [])].some((p) => seen.every((s) => s.has(p)));
      if (everywhere) return Date.now() - began;
      if (Date.now() - began > 15_000)
        throw new Error('cross-node delivery did not resume in 15 s');
    }
  } finally {
    for (const c of clients) c.socket.off('broadcast');
  }
}

describe('Redis killed and restarted under connected clients', () => {
  let redis: TestRedis;
  let kit: Kit;
  const clients: PlacedClient[] = [];

  before(async () => {
    redis = await testRedis();
    await redis.start();
    kit = await launchKit({
      env: { APP_MODULE: 'test/fixtures/echo-app.ts', REDIS_URL: redis.url },
    });
    clients.push(...(await clientsOnNets(kit.url, 12)));
    assert.ok(new Set(clients.map((c) => c.node)).size >= 3);
  });
  after(async () => {
    closeAll(clients.map((c) => c.socket));
    await kit?.stop();
    await redis?.cleanup();
  });

  it('restores cross-node delivery after each of three restarts, and reports not-ready meanwhile', async () => {
    assert.deepEqual(await ask(clients[0]?.socket as Socket, 'broadcast', 'warm-up'), { ok: true });
    for (let round = 1; round <= 3; round++) {
      await redis.kill();
      await waitFor(
        'every node to report not ready',
        async () => (await readiness(kit)).every((s) => s === 503),
        10_000,
      );
      const body = (await (await fetch(`http://127.0.0.1:${kit.nodePorts[0]}/readyz`)).json()) as {
        reason: string;
      };
      assert.match(body.reason, /redis/);
      // Same-node delivery does not need Redis.
      assert.ok(
        clients.every((c) => c.socket.connected),
        'a client lost its connection during the outage',
      );

      await redis.start();
      const ms = await crossNodeDeliveryResumes(clients);
      console.log(`round ${round}: cross-node delivery back ${ms} ms after Redis answered`);
      await waitFor(
        'every node to be ready again',
        async () => (await readiness(kit)).every((s) => s === 200),
        10_000,
      );
    }
  });
});

// The kit's own Redis: the nodes reach it over its Unix socket, and the supervisor starts it again
// when it dies. A restarted redis-server makes its socket anew; the nodes must find it.
describe("the kit's own Redis, over its Unix socket, killed under connected clients", () => {
  let kit: Kit;
  const clients: PlacedClient[] = [];

  before(async () => {
    kit = await launchKit({ env: { APP_MODULE: 'test/fixtures/echo-app.ts' } });
    clients.push(...(await clientsOnNets(kit.url, 12)));
    assert.ok(new Set(clients.map((c) => c.node)).size >= 3);
  });
  after(async () => {
    closeAll(clients.map((c) => c.socket));
    await kit?.stop();
  });

  /** Redis's clients on its Unix socket and on TCP (this test's own connection among them). */
  async function connectionsByWay(): Promise<{ unix: number; tcp: number }> {
    const redis = await kitRedis(kit);
    try {
      const list = String(await redis.sendCommand(['CLIENT', 'LIST']));
      const addrs = list
        .split('\n')
        .filter(Boolean)
        .map((line) => /(?:^| )addr=(\S*)/.exec(line)?.[1] ?? '');
      // A Unix socket client's addr is the socket's path and a zero port (`/…/redis.sock:0`).
      const unix = addrs.filter((a) => a.startsWith('/')).length;
      return { unix, tcp: addrs.length - unix };
    } finally {
      redis.destroy();
    }
  }

  it('the nodes are on the socket before and after a SIGKILL, and cross-node delivery resumes', async () => {
    // pub, sub and data: three connections per node.
    const expected = kit.nodePorts.length * 3;
    assert.deepEqual(await connectionsByWay(), { unix: expected, tcp: 1 });
    const before = kit.pid('redis');
    process.kill(before, 'SIGKILL');
    await waitFor(
      'the supervisor to start Redis again',
      async () => {
        try {
          return kit.pid('redis') !== before;
        } catch {
          return false; // between its death and its next start, no pid is recorded
        }
      },
      20_000,
    );
    const ms = await crossNodeDeliveryResumes(clients);
    console.log(`own Redis SIGKILLed: cross-node delivery back ${ms} ms after`);
    await waitFor(
      'every node to be ready again',
      async () => (await readiness(kit)).every((s) => s === 200),
      10_000,
    );
    assert.deepEqual(await connectionsByWay(), { unix: expected, tcp: 1 });
  });
});
