// The multi-host harness itself: hosts that reach each other over the bridge and can be cut off,
// a Redis Cluster placed across them that survives losing a master, and nothing left behind.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { allPids, commandLine, workingDirectory } from '../../scripts/kit/proc.ts';
import { IPROUTE2 } from '../../scripts/kit/system-packages.ts';
import { waitUntil } from '../../scripts/kit/wait.ts';
import {
  canMakeNamespaces,
  type Host,
  type Hosts,
  type InsideProcess,
  leftovers,
  makeHosts,
  sayNotTested,
} from './harness/netns.ts';
import {
  keyBetween,
  keySlot,
  MASTER_PORT,
  REPLICA_PORT,
  type RedisCluster,
  replicaHostOf,
  slotRange,
  startCluster,
} from './harness/redis-cluster.ts';

const ECHO_PORT = 9000;
const ECHO_SERVER = `require('node:net').createServer((s) => s.pipe(s)).listen(${ECHO_PORT}, process.argv[1]);`;

/** Processes of this run still alive: inside its folder, or bound to its subnet. */
function processesOf(net: Hosts): string[] {
  const subnet = net.subnet.replace(/0\/24$/, '');
  return allPids()
    .filter((pid) => pid !== process.pid)
    .map((pid) => ({ pid, args: commandLine(pid), cwd: workingDirectory(pid) ?? '' }))
    .filter(({ args, cwd }) => cwd.startsWith(net.dir) || args.includes(subnet))
    .map(({ pid, args, cwd }) => `${pid} ${args} cwd=${cwd}`);
}

const can = canMakeNamespaces();
if (!can.ok) {
  sayNotTested('test/multihost/harness-smoke.test.ts', can.why, [
    'hosts as network namespaces on a bridge: reaching each other, cut off and restored',
    'a Redis Cluster of 3 masters and 3 replicas across 3 hosts, and its failover',
    'that the multi-host harness leaves nothing behind',
  ]);
} else {
  describe('multi-host harness', { timeout: 300_000 }, () => {
    let net: Hosts | undefined;
    let cluster: RedisCluster | undefined;
    const echoes: InsideProcess[] = [];
    const hosts = () => net?.hosts ?? assert.fail('no hosts');

    before(async () => {
      net = makeHosts(3);
      cluster = await startCluster(net.hosts);
    });

    after(async () => {
      await cluster?.stop();
      net?.cleanup();
    });

    it('joins the hosts over the bridge: each opens TCP connections to every other', async () => {
      for (const host of hosts()) {
        echoes.push(host.exec(process.execPath, ['-e', ECHO_SERVER, host.address]));
      }
      for (const from of hosts()) {
        for (const to of hosts()) {
          if (from === to) continue;
          await waitUntil(
            `${from.name} to reach ${to.address}:${ECHO_PORT}`,
            async () => (await from.tcpFailure(to.address, ECHO_PORT)) === undefined,
            { timeoutMs: 20_000, intervalMs: 100 },
          );
        }
      }
      // Nothing outside the subnet is reachable from inside: a route lookup, no packet sent.
      const lookup = await hosts()[0]?.run(IPROUTE2.binary, ['route', 'get', '192.0.2.1']);
      assert.match(lookup?.output ?? '', /Network is unreachable/);
      for (const echo of echoes) echo.kill();
    });

    it("places each host's master with its replica on the next host", async () => {
      assert.ok(cluster);
      assert.equal(cluster.seeds.length, 3);
      for (const host of hosts()) {
        const master = cluster.node(host.index, MASTER_PORT);
        const [from, to] = slotRange(host.index, 3);
        assert.equal(await cluster.masterOf(from), master);
        assert.equal(await cluster.masterOf(to), master);
        const replica = cluster.node(replicaHostOf(host.index, 3), REPLICA_PORT);
        assert.deepEqual(await cluster.replicasOf(master), [replica]);
        assert.equal(
          cluster.seeds[host.index],
          `redis://:${cluster.password}@${host.address}:7001`,
        );
      }
      assert.equal(await cluster.masterOf('{user:1}:name'), await cluster.masterOf('user:1'));
    });

    it("promotes host 1's replica when host 0's master is SIGKILLed", async (t) => {
      assert.ok(cluster);
      const owner = cluster.node(0, MASTER_PORT);
      const heir = cluster.node(1, REPLICA_PORT);
      const key = keyBetween(...slotRange(0, 3));
      await cluster.command(owner, 'SET', key, 'survives');
      assert.equal(await cluster.command(owner, 'WAIT', '1', '5000'), '1');

      const killed = await cluster.killMaster(0);
      assert.equal(killed.node, owner);
      assert.equal(killed.replica, heir);
      const promotion = await cluster.waitPromotion(killed);
      t.diagnostic(
        `promotion after SIGKILL: replica is master after ${promotion.promotedMs} ms, cluster_state:ok everywhere after ${promotion.okMs} ms`,
      );
      assert.equal(promotion.replica, heir);
      assert.equal(await cluster.masterOf(key), heir);
      assert.equal(await cluster.command(heir, 'GET', key), 'survives');

      // The old master comes back as a replica of the one that took over.
      await cluster.restart(owner);
      await cluster.waitOk();
      await waitUntil(
        'the old master to follow the new one',
        async () => (await cluster?.replicasOf(heir))?.includes(owner) ?? false,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
    });

    it('moves a slot and its keys to another master', async () => {
      assert.ok(cluster);
      const from = cluster.node(1, MASTER_PORT);
      const to = cluster.node(2, MASTER_PORT);
      const key = keyBetween(...slotRange(1, 3));
      await cluster.command(from, 'SET', key, 'moved');
      assert.equal(await cluster.migrateSlot(keySlot(key), to), 1);
      assert.equal(await cluster.masterOf(key), to);
      assert.equal(await cluster.command(to, 'GET', key), 'moved');
      await cluster.waitOk();
    });

    it('cuts a host off with linkDown and joins it again with linkUp', async (t) => {
      const [a, b, c] = hosts() as [Host, Host, Host];
      // The replica on host 2 listens; host 2's master may fail over while it is cut off.
      const target = { address: c.address, port: REPLICA_PORT };
      assert.equal(await a.tcpFailure(target.address, target.port), undefined);
      c.linkDown();
      try {
        for (const from of [a, b]) {
          const why = await from.tcpFailure(target.address, target.port, 1500);
          assert.ok(why !== undefined, `${from.name} still reaches ${c.name}`);
          t.diagnostic(`${from.name} → ${c.name} with the link down: ${why}`);
        }
        assert.notEqual(await c.tcpFailure(a.address, MASTER_PORT, 1500), undefined);
      } finally {
        c.linkUp();
      }
      for (const from of [a, b]) {
        await waitUntil(
          `${from.name} to reach ${c.name} again`,
          async () => (await from.tcpFailure(target.address, target.port)) === undefined,
          { timeoutMs: 30_000, intervalMs: 100 },
        );
      }
    });

    it('leaves no namespace, link, folder or redis-server behind', async () => {
      assert.ok(net);
      assert.notDeepEqual(leftovers(), [], 'the run has made something to check');
      await cluster?.stop();
      net.cleanup();
      assert.deepEqual(leftovers(), []);
      assert.deepEqual(processesOf(net), []);
    });
  });
}
