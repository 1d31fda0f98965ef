// The nodes' Redis Cluster clients (services/node/redis.ts), run in the test process against a
// real cluster across hosts: the sharded adapter's SPUBLISH without a command timer, a failover
// they were not told of, then the master they did not know killed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { createClient, createCluster } from 'redis';
import { Server } from 'socket.io';
import { connectRedis, type RedisClients } from '../../services/node/redis.ts';
import { waitFor } from '../harness/kit.ts';
import { canMakeNamespaces, type Hosts, makeHosts, sayNotTested } from './harness/netns.ts';
import {
  keyBetween,
  MASTER_PORT,
  REPLICA_PORT,
  type RedisCluster,
  slotRange,
  startCluster,
} from './harness/redis-cluster.ts';

const can = canMakeNamespaces();
if (!can.ok) {
  sayNotTested('test/multihost/cluster-client.test.ts', can.why, [
    "the nodes' cluster clients find a promoted replica after a MOVED led them to a dead master",
  ]);
} else {
  describe("the nodes' Redis Cluster clients", { timeout: 300_000 }, () => {
    let net: Hosts | undefined;
    let cluster: RedisCluster | undefined;
    let redis: RedisClients | undefined;

    before(async () => {
      net = makeHosts(3);
      cluster = await startCluster(net.hosts);
    });

    after(async () => {
      await redis?.close();
      await cluster?.stop();
      net?.cleanup();
    });

    it("send the sharded adapter's SPUBLISH without a command timer, and it arrives", async () => {
      assert.ok(cluster);
      const log = Fastify({ logger: false }).log;
      const seeds = [...cluster.seeds];
      const sharded = await connectRedis(
        { redisCluster: seeds, redisUrl: '', adapter: 'redis-sharded', recovery: undefined },
        log,
        { onError: () => {}, onReady: () => {} },
      );
      await waitFor('the clients ready', () => sharded.ready(), 30_000);
      const io = new Server({ adapter: sharded.adapter('timers') });
      const listener = createCluster({
        rootNodes: seeds.map((url) => ({ url })),
        defaults: { password: cluster.password },
      });
      listener.on('error', () => {});
      try {
        await listener.connect();
        const received: string[] = [];
        // ADAPTER=redis-sharded: one channel per namespace (subscriptionMode 'static').
        await listener.sSubscribe('timers#/#', (message) => received.push(String(message)));
        // Each shard's client as the cluster client sends it a command: what timeout the
        // SPUBLISHes carry (the client's own options under the command's).
        const sent: unknown[] = [];
        type Send = (
          this: { _commandOptions?: object },
          args: unknown[],
          options?: object,
        ) => unknown;
        let base = Object.getPrototypeOf(createClient());
        while (base && !Object.hasOwn(base, 'sendCommand')) base = Object.getPrototypeOf(base);
        const original = base.sendCommand as Send;
        base.sendCommand = function (
          this: { _commandOptions?: object },
          args: unknown[],
          options?: object,
        ) {
          if (String(args[0]).toUpperCase() === 'SPUBLISH') {
            sent.push({ ...this._commandOptions, ...options });
          }
          return original.call(this, args, options);
        } satisfies Send;
        try {
          for (let i = 0; i < 20; i++) io.to(`room-${i}`).emit('m', i);
          await waitFor('20 publications at the listener', () => received.length >= 20);
        } finally {
          base.sendCommand = original;
        }
        assert.equal(sent.length, 20);
        for (const options of sent) {
          assert.equal(
            (options as { timeout?: number }).timeout,
            undefined,
            'a SPUBLISH with a timer',
          );
          assert.ok(
            (options as { abortSignal?: AbortSignal }).abortSignal,
            'a SPUBLISH with no bound',
          );
        }
      } finally {
        await io.of('/').adapter.close();
        await sharded.close();
        listener.destroy();
      }
    });

    it('find the promoted replica when a MOVED led them to a master killed before they reached it', async (t) => {
      assert.ok(cluster);
      const log = Fastify({ logger: false }).log;
      redis = await connectRedis(
        { redisCluster: [...cluster.seeds], redisUrl: '', adapter: 'redis', recovery: undefined },
        log,
        { onError: () => {}, onReady: () => {} },
      );
      const data = redis.data;
      // Shard 1: its master on host 1, its replica on host 2.
      const key = keyBetween(...slotRange(1, 3));
      await data.set(key, 'kept');
      const first = cluster.node(1, MASTER_PORT);
      const second = cluster.node(2, REPLICA_PORT);
      assert.equal(await cluster.command(first, 'WAIT', '1', '5000'), '1');

      // The replica takes over by hand (a failover given back, as an operator does): the clients
      // are not told, and go on sending shard 1's keys to host 1.
      await cluster.command(second, 'CLUSTER', 'FAILOVER');
      await waitFor(
        'host 2 to take shard 1 over',
        async () => (await cluster?.masterOf(key)) === second,
        30_000,
      );
      await cluster.waitOk(30_000);
      await waitFor(
        'host 1 to follow host 2',
        async () => (await cluster?.replicasOf(second))?.includes(first) ?? false,
        30_000,
      );
      assert.equal(await cluster.command(second, 'WAIT', '1', '5000'), '1');

      // The new master dies before the clients ever connected to it. Host 1 answers the next
      // command with MOVED to it, and its port refuses at once, until host 1 is master again.
      const killed = await cluster.kill(second, 'SIGKILL');
      assert.equal(killed.replica, first);
      const asked = Date.now();
      const during = data.get(key).catch((error: Error) => error.message);
      const promotion = await cluster.waitPromotion(killed);
      t.diagnostic(`host 1 master again ${promotion.promotedMs} ms after the kill`);

      // Answered within 10 s of the promotion, by whichever attempt (each given 1 s).
      const attempt = () =>
        Promise.race([
          data.get(key).catch(() => undefined),
          new Promise<undefined>((r) => setTimeout(r, 1000)),
        ]);
      const answer = await waitFor(
        "shard 1's keys to answer",
        async () => ((await attempt()) === 'kept' ? 'kept' : undefined),
        Math.max(0, asked + promotion.promotedMs + 10_000 - Date.now()),
        200,
      ).catch(() => undefined);
      const atKill = await Promise.race([during, new Promise((r) => setTimeout(r, 0, 'pending'))]);
      t.diagnostic(
        `the command sent at the kill: ${String(atKill)}; shard 1 answered ${Date.now() - asked} ms after the kill`,
      );
      assert.equal(answer, 'kept', "shard 1's keys answer again after the promotion");
      assert.notEqual(atKill, 'pending', 'the command sent at the kill settled');
    });
  });
}
