// A Redis Cluster of three masters on loopback for the `kit-redis-cluster` variant: the kit as it
// runs across hosts (REDIS_CLUSTER, the sharded adapter), its Redis on this host. No replicas for
// the bench (what a delivery costs does not depend on them, and it kills nothing); a replica per
// master for test/integration/sharded-failover.test.ts, which fails masters over.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from '../kit/ports.ts';
import { processTree } from '../kit/proc.ts';
import { stopProcess } from '../kit/stop-process.ts';
import { REDIS } from '../kit/system-packages.ts';
import { waitUntil } from '../kit/wait.ts';

const REDIS_CLI = join(dirname(REDIS.binary), 'redis-cli');
const MASTERS = 3;
/** A node unanswered this long is suspected, and failover starts. */
export const NODE_TIMEOUT_MS = 2000;
const run = promisify(execFile);

export interface LoopbackCluster {
  /** REDIS_CLUSTER's value: every node's URL, comma-separated. */
  readonly seeds: string;
  /** Every node's port. */
  readonly ports: readonly number[];
  /** redis-cli's answer to `args` from the node on `port`. */
  command(port: number, ...args: string[]): Promise<string>;
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * Starts three masters (and `replicas` replicas of each), joins them with `redis-cli --cluster
 * create` and waits for `cluster_state:ok` everywhere.
 */
export async function startLoopbackCluster({ replicas = 0 } = {}): Promise<LoopbackCluster> {
  const count = MASTERS * (1 + replicas);
  const dir = mkdtempSync(join(tmpdir(), 'kit-bench-cluster-'));
  const password = randomBytes(18).toString('hex');
  // Each node's cluster bus is a port of its own too (by default its port + 10000, which may be
  // taken, or past 65535).
  const free = await freePorts(2 * count);
  const ports = free.slice(0, count);
  const busPorts = free.slice(count);
  const servers: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      servers.map((s) =>
        s.pid === undefined || s.exitCode !== null || s.signalCode !== null
          ? undefined
          : stopProcess(s.pid, 'SIGTERM', 5000, () => s.exitCode !== null || s.signalCode !== null),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  const cli = (port: number, ...args: string[]) =>
    run(REDIS_CLI, ['-e', '-p', String(port), ...args], {
      env: { ...process.env, REDISCLI_AUTH: password },
      timeout: 30_000,
      encoding: 'utf8',
    });
  try {
    for (const [i, port] of ports.entries()) {
      const conf = join(dir, `redis-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `requirepass ${password}`,
          `masterauth ${password}`,
          'cluster-enabled yes',
          // With replicas (the failover test), short: a master votes for a replica of one master
          // once per twice this. Without, Redis's 15 s: a master busy under the bench is not
          // taken for failed.
          `cluster-node-timeout ${replicas > 0 ? NODE_TIMEOUT_MS : 15_000}`,
          `cluster-port ${busPorts[i]}`,
          `cluster-config-file nodes-${port}.conf`,
          'save ""',
          'appendonly no',
          `dir ${dir}`,
          'daemonize no',
          `logfile ${join(dir, `redis-${port}.log`)}`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      const server = spawn(REDIS.binary, [conf], { cwd: dir, stdio: 'ignore' });
      // Not found, say: the wait below names it, rather than an uncaught error.
      server.on('error', () => {});
      servers.push(server);
    }
    /** A server that exited (a port taken, the binary missing) ends the wait at once. */
    const exited = () => {
      const dead = servers.findIndex((s) => s.exitCode !== null || s.signalCode !== null || !s.pid);
      return dead === -1 ? undefined : `redis-server on port ${ports[dead]} is not running`;
    };
    const answers = (port: number) =>
      cli(port, 'PING').then(
        ({ stdout }) => stdout.trim() === 'PONG',
        () => false,
      );
    await waitUntil(
      'the cluster nodes to answer',
      async () => (await Promise.all(ports.map(answers))).every(Boolean),
      { timeoutMs: 30_000, hopeless: exited },
    );
    await cli(
      ports[0] as number,
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    );
    // And every replica known as one everywhere, and in sync with its master.
    const ok = async (port: number) => {
      try {
        const info = (await cli(port, 'CLUSTER', 'INFO')).stdout;
        const nodes = (await cli(port, 'CLUSTER', 'NODES')).stdout;
        const replication = (await cli(port, 'INFO', 'replication')).stdout;
        return (
          info.includes('cluster_state:ok') &&
          (nodes.match(/[ ,]slave /g) ?? []).length === MASTERS * replicas &&
          (replication.includes('role:master') || replication.includes('master_link_status:up'))
        );
      } catch {
        return false;
      }
    };
    await waitUntil(
      'the cluster to be ok',
      async () => (await Promise.all(ports.map(ok))).every(Boolean),
      { timeoutMs: 30_000, hopeless: exited },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    seeds: ports.map((p) => `redis://:${password}@127.0.0.1:${p}`).join(','),
    ports,
    command: async (port, ...args) => (await cli(port, ...args)).stdout.trim(),
    pids: () => processTree(servers.flatMap((s) => (s.pid === undefined ? [] : [s.pid]))),
    stop,
  };
}
