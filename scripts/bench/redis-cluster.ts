// A Redis Cluster of three masters on loopback for the `kit-redis-cluster` variant: the kit as it
// runs across hosts (REDIS_CLUSTER, the sharded adapter), its Redis on this host. No replicas: what
// a delivery costs does not depend on them, and the bench kills nothing.
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
const run = promisify(execFile);

export interface LoopbackCluster {
  /** REDIS_CLUSTER's value: every master's URL, comma-separated. */
  readonly seeds: string;
  pids(): number[];
  stop(): Promise<void>;
}

/** Starts three cluster-enabled redis-servers, joins them and waits for `cluster_state:ok`. */
export async function startLoopbackCluster(): Promise<LoopbackCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'kit-bench-cluster-'));
  const password = randomBytes(18).toString('hex');
  const ports = await freePorts(MASTERS);
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
    for (const port of ports) {
      const conf = join(dir, `redis-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `requirepass ${password}`,
          `masterauth ${password}`,
          'cluster-enabled yes',
          `cluster-config-file nodes-${port}.conf`,
          'save ""',
          'appendonly no',
          `dir ${dir}`,
          'daemonize no',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      servers.push(spawn(REDIS.binary, [conf], { cwd: dir, stdio: 'ignore' }));
    }
    const answers = (port: number) =>
      cli(port, 'PING').then(
        ({ stdout }) => stdout.trim() === 'PONG',
        () => false,
      );
    await waitUntil(
      'the cluster nodes to answer',
      async () => (await Promise.all(ports.map(answers))).every(Boolean),
      { timeoutMs: 30_000 },
    );
    await cli(
      ports[0] as number,
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-yes',
    );
    const ok = (port: number) =>
      cli(port, 'CLUSTER', 'INFO').then(
        ({ stdout }) => stdout.includes('cluster_state:ok'),
        () => false,
      );
    await waitUntil(
      'the cluster to be ok',
      async () => (await Promise.all(ports.map(ok))).every(Boolean),
      { timeoutMs: 30_000 },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    seeds: ports.map((p) => `redis://:${password}@127.0.0.1:${p}`).join(','),
    pids: () => processTree(servers.flatMap((s) => (s.pid === undefined ? [] : [s.pid]))),
    stop,
  };
}
