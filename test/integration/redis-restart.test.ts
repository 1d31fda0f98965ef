// node-redis has a history of not restoring pub/sub subscriptions after a reconnect
// (socket.io#4845, redis-adapter#446). Kill Redis under connected clients, start it again, and
// cross-node delivery must come back by itself, every time.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { ask, clientsOnNets, closeAll } from '../harness/clients.ts';
import { type Kit, launchKit, waitFor } from '../harness/kit.ts';
import { type TestRedis, testRedis } from '../harness/redis.ts';

async function readiness(kit: Kit): Promise<number[]> {
  return Promise.all(
    kit.nodePorts.map(async (port) => (await fetch(`http://127.0.0.1:${port}/readyz`)).status),
  );
}

describe('Redis killed and restarted under connected clients', () => {
  let redis: TestRedis;
  let kit: Kit;
  const clients: Array<{ socket: Socket; node: string }> = [];

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

  /** Broadcasts from the first client until one broadcast reaches every client; returns ms. */
  async function crossNodeDeliveryResumes(): Promise<number> {
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
      const ms = await crossNodeDeliveryResumes();
      console.log(`round ${round}: cross-node delivery back ${ms} ms after Redis answered`);
      await waitFor(
        'every node to be ready again',
        async () => (await readiness(kit)).every((s) => s === 200),
        10_000,
      );
    }
  });
});
