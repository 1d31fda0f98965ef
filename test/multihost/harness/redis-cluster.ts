// A real Redis Cluster for the multi-host tests, made of redis-server processes inside the hosts
// (netns.ts): on every host a master (port 7001) and a replica (port 7002) of the PREVIOUS host's
// master, so that host i's master has its replica on host i+1. Losing one host then loses one
// master and another shard's replica, and every shard still has a copy.
//
// The cluster is made by hand (CLUSTER MEET, ADDSLOTSRANGE, REPLICATE), not by
// `redis-cli --cluster create`, which places replicas as it likes. The test process talks to the
// nodes with redis-cli from the root namespace, over the bridge.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { REDIS } from '../../../scripts/kit/system-packages.ts';
import { waitUntil } from '../../../scripts/kit/wait.ts';
import { keySlot, SLOTS } from '../../../services/node/key-slot.ts';
import type { Host, InsideProcess } from './netns.ts';

export { keySlot };

const REDIS_CLI = join(dirname(REDIS.binary), 'redis-cli');
export const MASTER_PORT = 7001;
export const REPLICA_PORT = 7002;
/** Short, for tests: a node unanswered this long is suspected, and failover starts. */
export const NODE_TIMEOUT_MS = 2000;

const run = promisify(execFile);

export interface ClusterNode {
  readonly host: Host;
  readonly port: number;
  readonly address: string;
  /** redis://:<password>@<address>:<port> */
  readonly url: string;
  /** The node's cluster id; nodes.conf keeps it over restarts. */
  readonly id: string;
  readonly dir: string;
  /** Whether its redis-server runs, as far as this harness started and killed it. */
  readonly running: boolean;
}

export interface Killed {
  readonly node: ClusterNode;
  /** Date.now() when the signal was sent. */
  readonly at: number;
  /** The replica the master had when it was killed. */
  readonly replica: ClusterNode | undefined;
}

export interface Promotion {
  readonly replica: ClusterNode;
  /** From the kill until the replica called itself master. */
  readonly promotedMs: number;
  /** From the kill until every running node said `cluster_state:ok` again. */
  readonly okMs: number;
}

export interface RedisCluster {
  readonly nodes: readonly ClusterNode[];
  readonly password: string;
  /** The masters' URLs as they were made, for REDIS_CLUSTER (joined with commas). */
  readonly seeds: readonly string[];
  /** The node on host `hostIndex` at `port` (MASTER_PORT or REPLICA_PORT). */
  node(hostIndex: number, port: number): ClusterNode;
  /** One command on one node (redis-cli); rejects with Redis's error. */
  command(node: ClusterNode, ...args: string[]): Promise<string>;
  /** The master serving a slot (number) or a key's slot (string), as the first running node
   * that answers sees it. */
  masterOf(slotOrKey: number | string): Promise<ClusterNode>;
  replicasOf(master: ClusterNode): Promise<ClusterNode[]>;
  /** Signals a node's redis-server and waits for it to exit. */
  kill(node: ClusterNode, signal?: NodeJS.Signals): Promise<Killed>;
  /** SIGKILLs the master on a host (its MASTER_PORT node if both are masters now). */
  killMaster(hostIndex: number): Promise<Killed>;
  /** Waits until the killed master's replica took over and the cluster is ok again. */
  waitPromotion(killed: Killed, timeoutMs?: number): Promise<Promotion>;
  /** Starts a stopped node again (same config, data and id) and waits until it answers. */
  restart(node: ClusterNode): Promise<void>;
  /** Waits until every running node says `cluster_state:ok` and agrees who serves each slot. */
  waitOk(timeoutMs?: number): Promise<void>;
  /** Moves one slot and its keys to another master (the resharding steps of the cluster spec);
   * resolves with the number of keys moved. */
  migrateSlot(slot: number, to: ClusterNode): Promise<number>;
  /** Stops every redis-server of the cluster (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
}

interface NodeLine {
  id: string;
  /** address:port */
  endpoint: string;
  flags: string[];
  masterId: string | undefined;
  slots: [number, number][];
}

/** CLUSTER NODES, one entry per line (the format is in the CLUSTER NODES documentation). */
function parseNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', master = '-', , , , , ...slots] = line.split(' ');
      return {
        id,
        endpoint: address.split('@')[0] ?? '',
        flags: flags.split(','),
        masterId: master === '-' ? undefined : master,
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [from, to = from] = s.split('-').map(Number) as [number, number?];
            return [from, to] as [number, number];
          }),
      };
    });
}

const infoField = (info: string, field: string) =>
  new RegExp(`^${field}:(.*)\\r?$`, 'm').exec(info)?.[1];

/** A key whose slot lies in [from, to]. */
export function keyBetween(from: number, to: number): string {
  for (let i = 0; ; i++) {
    const slot = keySlot(`harness:${i}`);
    if (from <= slot && slot <= to) return `harness:${i}`;
  }
}

/** The slots master i of n serves when the cluster is made. */
export function slotRange(index: number, count: number): [number, number] {
  return [Math.floor((index * SLOTS) / count), Math.floor(((index + 1) * SLOTS) / count) - 1];
}

/** The host that holds the replica of host i's master. */
export const replicaHostOf = (index: number, count: number) => (index + 1) % count;

interface MutableNode {
  host: Host;
  port: number;
  address: string;
  url: string;
  id: string;
  dir: string;
  running: boolean;
  process: InsideProcess | undefined;
}

function config(node: MutableNode, password: string): string {
  return [
    `port ${node.port}`,
    `bind ${node.address} 127.0.0.1`,
    `requirepass ${password}`,
    `masterauth ${password}`,
    'cluster-enabled yes',
    'cluster-config-file nodes.conf',
    `cluster-node-timeout ${NODE_TIMEOUT_MS}`,
    // As deploy/redis/redis-cluster.conf.example: the shards that have a master keep serving
    // while another fails over.
    'cluster-require-full-coverage no',
    // A replica may take over however long it was cut off from its master: the tests cut links.
    'cluster-replica-validity-factor 0',
    // Replicas stay where they were put, so that tests know which host holds which copy.
    'cluster-allow-replica-migration no',
    // Said outright, not learnt from the first MEET: the address clients are redirected to.
    `cluster-announce-ip ${node.address}`,
    // SIGTERM makes a master wait this long for lagging replicas (default 10 s): stop() is quick.
    'shutdown-timeout 1',
    'appendonly yes',
    'save ""',
    `dir ${node.dir}`,
    'daemonize no',
    'logfile ""',
    '',
  ].join('\n');
}

export async function startCluster(
  hosts: readonly Host[],
  options: { timeoutMs?: number } = {},
): Promise<RedisCluster> {
  const { timeoutMs = 60_000 } = options;
  if (hosts.length < 3) throw new RangeError('a Redis Cluster needs 3 masters: give 3 hosts');
  const password = randomBytes(18).toString('hex');
  const nodes: MutableNode[] = hosts.flatMap((host) =>
    [MASTER_PORT, REPLICA_PORT].map((port) => ({
      host,
      port,
      address: host.address,
      url: `redis://:${password}@${host.address}:${port}`,
      id: '',
      dir: join(host.dir, `redis-${port}`),
      running: false,
      process: undefined,
    })),
  );
  const node = (hostIndex: number, port: number) => {
    const found = nodes.find((n) => n.host.index === hostIndex && n.port === port);
    if (found === undefined) throw new Error(`no cluster node on host ${hostIndex} port ${port}`);
    return found;
  };
  const masters = hosts.map((h) => node(h.index, MASTER_PORT));
  const replicas = hosts.map((h) => node(h.index, REPLICA_PORT));

  const command = async (n: ClusterNode, ...args: string[]) => {
    try {
      const { stdout } = await run(REDIS_CLI, ['-e', '-h', n.address, '-p', `${n.port}`, ...args], {
        env: { ...process.env, REDISCLI_AUTH: password },
        timeout: 5000,
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout.replace(/\n$/, '');
    } catch (error) {
      const { stderr, stdout } = error as { stderr?: string; stdout?: string };
      const why = stderr?.trim() || stdout?.trim() || (error as Error).message;
      throw new Error(`${n.address}:${n.port} ${args[0]}: ${why}`);
    }
  };
  const answer = (n: ClusterNode, ...args: string[]) => command(n, ...args).catch(() => undefined);
  const wait = <T>(what: string, probe: () => Promise<T | undefined | false>, ms = timeoutMs) =>
    waitUntil(what, probe, { timeoutMs: ms, intervalMs: 50, maxIntervalMs: 200 });
  const byEndpoint = (endpoint: string) => nodes.find((n) => `${n.address}:${n.port}` === endpoint);
  const byId = (id: string | undefined) => nodes.find((n) => n.id === id);
  /** CLUSTER NODES as the first running node that answers tells it. */
  const view = async () => {
    for (const n of nodes.filter((m) => m.running)) {
      const text = await answer(n, 'CLUSTER', 'NODES');
      if (text !== undefined) return parseNodes(text);
    }
    throw new Error('no node of the cluster answers');
  };

  const launch = async (n: MutableNode) => {
    mkdirSync(n.dir, { recursive: true });
    const conf = join(n.dir, 'redis.conf');
    writeFileSync(conf, config(n, password), { mode: 0o600 });
    const log = join(n.dir, 'redis.log');
    const started = n.host.exec(REDIS.binary, [conf], { cwd: n.dir, log });
    n.process = started;
    n.running = true;
    void started.exited.then(() => {
      if (n.process === started) n.running = false;
    });
    await wait(
      `redis-server ${n.address}:${n.port} to answer`,
      async () => {
        if (!n.running) {
          const tail = readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n');
          throw new Error(`redis-server ${n.address}:${n.port} exited:\n${tail}`);
        }
        return (await answer(n, 'PING')) === 'PONG';
      },
      20_000,
    );
  };

  const kill = async (n: ClusterNode, signal: NodeJS.Signals = 'SIGKILL') => {
    const m = n as MutableNode;
    const lines = await view().catch(() => []);
    const replica = byId(lines.find((l) => l.masterId === m.id)?.id);
    const at = Date.now();
    if (m.process !== undefined && m.running) {
      m.process.kill(signal);
      await m.process.exited;
    }
    m.running = false;
    return { node: n, at, replica };
  };

  const waitOk = async (ms = timeoutMs) => {
    await wait(
      'every running cluster node to say cluster_state:ok and agree on the slots',
      async () => {
        const views = new Set<string>();
        for (const n of nodes.filter((m) => m.running)) {
          const info = await answer(n, 'CLUSTER', 'INFO');
          if (info === undefined || infoField(info, 'cluster_state') !== 'ok') return false;
          const text = await answer(n, 'CLUSTER', 'NODES');
          if (text === undefined) return false;
          const owners = parseNodes(text)
            .filter((l) => l.flags.includes('master') && l.slots.length > 0)
            .map((l) => `${l.id}:${JSON.stringify(l.slots)}`)
            .sort();
          views.add(owners.join(' '));
        }
        return views.size === 1;
      },
      ms,
    );
  };

  const cluster: RedisCluster = {
    nodes,
    password,
    seeds: masters.map((m) => m.url),
    node,
    command,
    async masterOf(slotOrKey) {
      const slot = typeof slotOrKey === 'number' ? slotOrKey : keySlot(slotOrKey);
      const owner = (await view()).find(
        (l) => l.flags.includes('master') && l.slots.some(([a, b]) => a <= slot && slot <= b),
      );
      const found = owner && byEndpoint(owner.endpoint);
      if (found === undefined) throw new Error(`no master serves slot ${slot}`);
      return found;
    },
    async replicasOf(master) {
      return (await view())
        .filter((l) => l.masterId === master.id)
        .map((l) => byId(l.id))
        .filter((n): n is MutableNode => n !== undefined);
    },
    kill,
    async killMaster(hostIndex) {
      const lines = await view();
      const isMaster = (n: MutableNode) =>
        n.running && (lines.find((l) => l.id === n.id)?.flags.includes('master') ?? false);
      const target = [node(hostIndex, MASTER_PORT), node(hostIndex, REPLICA_PORT)].find(isMaster);
      if (target === undefined) throw new Error(`host ${hostIndex} runs no master now`);
      return kill(target, 'SIGKILL');
    },
    async waitPromotion(killed, ms = 30_000) {
      const replica = killed.replica;
      if (replica === undefined) throw new Error(`${killed.node.url} had no replica to promote`);
      await wait(
        `${replica.address}:${replica.port} to take over from ${killed.node.address}:${killed.node.port}`,
        async () => {
          const text = await answer(replica, 'CLUSTER', 'NODES');
          if (text === undefined) return false;
          const myself = parseNodes(text).find((l) => l.flags.includes('myself'));
          return (myself?.flags.includes('master') ?? false) && (myself?.slots.length ?? 0) > 0;
        },
        ms,
      );
      const promotedMs = Date.now() - killed.at;
      await waitOk(ms);
      return { replica, promotedMs, okMs: Date.now() - killed.at };
    },
    async restart(n) {
      const m = n as MutableNode;
      if (m.running) throw new Error(`${m.address}:${m.port} runs already`);
      await launch(m);
    },
    waitOk,
    async migrateSlot(slot, to) {
      const from = await cluster.masterOf(slot);
      if (from === to) return 0;
      await command(to, 'CLUSTER', 'SETSLOT', `${slot}`, 'IMPORTING', from.id);
      await command(from, 'CLUSTER', 'SETSLOT', `${slot}`, 'MIGRATING', to.id);
      let moved = 0;
      for (;;) {
        const keys = (await command(from, 'CLUSTER', 'GETKEYSINSLOT', `${slot}`, '100'))
          .split('\n')
          .filter(Boolean);
        if (keys.length === 0) break;
        await command(
          from,
          'MIGRATE',
          to.address,
          `${to.port}`,
          '',
          '0',
          '5000',
          'AUTH',
          password,
          'KEYS',
          ...keys,
        );
        moved += keys.length;
      }
      // The new owner first, then the old one, then the other masters (cluster spec, resharding).
      const masterIds = (await view()).filter((l) => l.flags.includes('master')).map((l) => l.id);
      const others = nodes.filter(
        (n) => n.running && n !== to && n !== from && masterIds.includes(n.id),
      );
      for (const n of [to, from, ...others]) {
        await command(n, 'CLUSTER', 'SETSLOT', `${slot}`, 'NODE', to.id);
      }
      await wait(`slot ${slot} to be ${to.address}:${to.port}'s on every node`, async () => {
        for (const n of nodes.filter((m) => m.running)) {
          const text = await answer(n, 'CLUSTER', 'NODES');
          const owner =
            text && parseNodes(text).find((l) => l.slots.some(([a, b]) => a <= slot && slot <= b));
          if (!owner || owner.id !== to.id) return false;
        }
        return true;
      });
      return moved;
    },
    async stop() {
      await Promise.all(
        nodes.map(async (n) => {
          if (n.process === undefined || !n.running) return;
          n.process.kill('SIGTERM');
          const exited = await Promise.race([n.process.exited, pause(5000).then(() => undefined)]);
          if (exited === undefined) {
            n.process.kill('SIGKILL');
            await n.process.exited;
          }
          n.running = false;
        }),
      );
    },
  };

  try {
    await Promise.all(nodes.map(launch));
    for (const n of nodes) n.id = await command(n, 'CLUSTER', 'MYID');
    // Distinct epochs before the nodes meet, as redis-cli --cluster create does, so that no
    // epoch collision has to be resolved.
    for (const [i, m] of masters.entries()) {
      await command(m, 'CLUSTER', 'SET-CONFIG-EPOCH', `${i + 1}`);
    }
    const [first, ...rest] = nodes as [MutableNode, ...MutableNode[]];
    for (const n of rest) await command(first, 'CLUSTER', 'MEET', n.address, `${n.port}`);
    await wait('every node to know every other', async () => {
      for (const n of nodes) {
        const text = await answer(n, 'CLUSTER', 'NODES');
        if (text === undefined) return false;
        const lines = parseNodes(text);
        if (lines.length !== nodes.length) return false;
        if (lines.some((l) => l.flags.some((f) => f === 'handshake' || f === 'noaddr'))) {
          return false;
        }
      }
      return true;
    });
    for (const [i, m] of masters.entries()) {
      const [from, to] = slotRange(i, masters.length);
      await command(m, 'CLUSTER', 'ADDSLOTSRANGE', `${from}`, `${to}`);
    }
    for (const [i, m] of masters.entries()) {
      const replica = replicas[replicaHostOf(i, masters.length)] as MutableNode;
      await command(replica, 'CLUSTER', 'REPLICATE', m.id);
    }
    await waitOk();
    await wait('every replica to have synced with its master', async () => {
      for (const r of replicas) {
        const info = await answer(r, 'INFO', 'replication');
        if (info === undefined || infoField(info, 'master_link_status') !== 'up') return false;
      }
      return true;
    });
    const lines = await view();
    for (const [i, m] of masters.entries()) {
      const line = lines.find((l) => l.id === m.id);
      const [from, to] = slotRange(i, masters.length);
      const replica = replicas[replicaHostOf(i, masters.length)] as MutableNode;
      const replicaLine = lines.find((l) => l.id === replica.id);
      if (
        !line?.flags.includes('master') ||
        JSON.stringify(line.slots) !== JSON.stringify([[from, to]]) ||
        replicaLine?.masterId !== m.id
      ) {
        throw new Error(`the cluster was not made as asked:\n${JSON.stringify(lines, null, 1)}`);
      }
    }
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
