// The servers the bench compares, each started the same way and known by its processes (for CPU
// and memory accounting): the kit behind nginx, the kit behind HAProxy, one plain Socket.IO
// process, Node's cluster with @socket.io/sticky, and a bare `ws` server.
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../services/node/config.ts';
import { isolatedKitEnv } from '../kit/isolated-env.ts';
import { freePorts } from '../kit/ports.ts';
import { processTree } from '../kit/proc.ts';
import { renderTemplate } from '../kit/render-nginx.ts';
import { runDir as runDirOf } from '../kit/run-dir.ts';
import { socketPath } from '../kit/upstream.ts';
import type { Kind } from './loadgen.ts';

export type VariantName = 'kit' | 'kit-haproxy' | 'plain' | 'cluster' | 'raw-ws';

export interface Variant {
  readonly name: VariantName;
  readonly label: string;
  readonly url: string;
  readonly kind: Kind;
  /** Every server process of the variant now (workers included). */
  pids(): number[];
  /** Per-node HTTP ports (the kit variants), for /metrics. */
  readonly nodePorts: number[];
  /** The nodes' Unix sockets (the kit variants), the way in for nginx and HAProxy alike. */
  readonly nodeSockets?: string[];
  stop(): Promise<void>;
}

export const LABELS: Record<VariantName, string> = {
  kit: 'kit: nginx + 4 nodes + Redis adapter',
  'kit-haproxy': 'kit nodes behind HAProxy',
  plain: 'one plain Socket.IO process',
  cluster: 'cluster + @socket.io/sticky (tutorials)',
  'raw-ws': 'raw ws (ceiling)',
};

function runScript(name: string, env: NodeJS.ProcessEnv, args: string[] = []): void {
  execFileSync(join(ROOT, 'scripts', `${name}.sh`), args, {
    cwd: ROOT,
    env: isolatedKitEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 120_000,
  });
}

function pidOf(runDir: string, part: string): number {
  return Number(readFileSync(join(runDir, 'pids', `${part}.pid`), 'utf8').split(' ')[0]);
}

export async function startKitVariant(): Promise<Variant> {
  const [port, redisPort, ...nodePorts] = (await freePorts(6)) as [number, number, ...number[]];
  const runDir = mkdtempSync(join(tmpdir(), 'kit-bench-'));
  const env = {
    PORT: String(port),
    NODE_PORTS: nodePorts.join(','),
    REDIS_PORT: String(redisPort),
    RUN_DIR: runDir,
    LOG_LEVEL: 'warn',
    APP_MODULE: 'scripts/benchmarks/fanout.ts',
  };
  runScript('up', env, ['--detach']);
  const parts = ['redis', 'nginx', ...nodePorts.map((p) => `node-${p}`)];
  return {
    name: 'kit',
    label: LABELS.kit,
    url: `http://127.0.0.1:${port}`,
    kind: 'socketio',
    nodePorts,
    nodeSockets: nodePorts.map((p) => socketPath(runDirOf(runDir), p)),
    pids: () => processTree(parts.map((p) => pidOf(runDir, p))),
    async stop() {
      runScript('down', env);
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** The kit's nodes and Redis, with HAProxy in front instead of nginx (nginx idles). */
export async function startHaproxyVariant(): Promise<Variant> {
  const kit = await startKitVariant();
  const [port] = (await freePorts(1)) as [number];
  const dir = mkdtempSync(join(tmpdir(), 'kit-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  const template = readFileSync(join(ROOT, 'scripts/benchmarks/haproxy.cfg.template'), 'utf8');
  writeFileSync(
    cfg,
    renderTemplate(template, {
      PORT: String(port),
      // Over the same Unix sockets nginx uses, so the proxies are compared on equal terms.
      SERVERS: (kit.nodeSockets ?? [])
        .map((path, i) => `    server node${i + 1} unix@${path}`)
        .join('\n'),
    }),
  );
  const haproxy = spawn('/usr/sbin/haproxy', ['-f', cfg, '-db'], { stdio: 'ignore' });
  await waitHttp(`http://127.0.0.1:${port}/healthz`);
  const kitPids = kit.pids;
  return {
    name: 'kit-haproxy',
    label: LABELS['kit-haproxy'],
    url: `http://127.0.0.1:${port}`,
    kind: 'socketio',
    nodePorts: kit.nodePorts,
    nodeSockets: kit.nodeSockets,
    // nginx is running but carries nothing here; it is left out of the accounting.
    pids: () => [
      ...processTree([haproxy.pid as number]),
      ...kitPids().filter((pid) => !isNginx(pid)),
    ],
    async stop() {
      haproxy.kill('SIGTERM');
      await kit.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The program a process runs (`node`, `nginx`, `redis-server`, `haproxy`), from /proc. */
export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

function isNginx(pid: number): boolean {
  return processName(pid) === 'nginx';
}

async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not answer in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function forkServer(file: string, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(join(ROOT, 'scripts/benchmarks/servers', file), args, {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('message', (m) => (m === 'ready' ? resolve(child) : undefined));
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

async function startForked(name: 'plain' | 'cluster' | 'raw-ws', file: string): Promise<Variant> {
  const [port] = (await freePorts(1)) as [number];
  const child = await forkServer(file, [String(port)]);
  return {
    name,
    label: LABELS[name],
    url: `http://127.0.0.1:${port}`,
    kind: name === 'raw-ws' ? 'ws' : 'socketio',
    nodePorts: [],
    pids: () => processTree([child.pid as number]),
    stop: async () => {
      for (const pid of processTree([child.pid as number]).reverse()) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {}
      }
      await stopChild(child);
    },
  };
}

export async function startVariant(name: VariantName): Promise<Variant> {
  switch (name) {
    case 'kit':
      return startKitVariant();
    case 'kit-haproxy':
      return startHaproxyVariant();
    case 'plain':
      return startForked('plain', 'plain.ts');
    case 'cluster':
      return startForked('cluster', 'cluster.ts');
    case 'raw-ws':
      return startForked('raw-ws', 'raw-ws.ts');
  }
}

/** CPU seconds (user + system) used so far by these processes. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return ticks / 100;
}

/** Resident memory in bytes of these processes. */
export function rssBytes(pids: number[]): number {
  let pages = 0;
  for (const pid of pids) {
    try {
      pages += Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    } catch {}
  }
  return pages * 4096;
}

export { isNginx, waitHttp };
