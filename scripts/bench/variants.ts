// The servers the bench compares, each started the same way and known by its processes (for CPU
// and memory accounting): the kit behind nginx, the kit behind HAProxy, one plain Socket.IO
// process, Node's cluster with @socket.io/sticky, a bare `ws` server, and the floors: bare `ws`
// servers behind nginx alone, behind the docs' nginx, and in the kit's design (with Redis).
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../services/node/config.ts';
import { launchKit } from '../kit/launch-kit.ts';
import { freePorts } from '../kit/ports.ts';
import { httpOk } from '../kit/probes.ts';
import { processTree, programName } from '../kit/proc.ts';
import { autoWorkers, openFilesLimit, renderTemplate } from '../kit/render-nginx.ts';
import { runDir as runDirOf } from '../kit/run-dir.ts';
import { stopProcess } from '../kit/stop-process.ts';
import { REDIS } from '../kit/system-packages.ts';
import { socketPath } from '../kit/upstream.ts';
import { waitUntil } from '../kit/wait.ts';
import type { Kind } from './load/loadgen.ts';
import { startLoopbackCluster } from './redis-cluster.ts';

export type VariantName =
  | 'kit'
  | 'kit-cores'
  | 'kit-streams'
  | 'kit-redis-cluster'
  | 'kit-haproxy'
  | 'docs-nginx'
  | 'plain'
  | 'cluster'
  | 'raw-ws'
  | 'nginx-floor'
  | 'docs-floor'
  | 'design-floor';

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

/** kit-cores's nodes: one per core, 16 at most (a node per core of a large host says nothing more). */
const CORES = Math.min(16, availableParallelism());

export const LABELS: Record<VariantName, string> = {
  kit: 'kit: nginx + 4 nodes + Redis adapter',
  'kit-cores': `kit with one node per core (${CORES})`,
  'kit-streams': 'kit with ADAPTER=redis-streams (recovery)',
  'kit-redis-cluster': 'kit on a Redis Cluster of 3 masters (sharded adapter)',
  'kit-haproxy': 'kit nodes behind HAProxy',
  'docs-nginx': "kit nodes behind the Socket.IO docs' nginx example",
  plain: 'one plain Socket.IO process',
  cluster: 'cluster + @socket.io/sticky (tutorials)',
  'raw-ws': 'raw ws (ceiling)',
  'nginx-floor': "nginx's floor: raw ws behind nginx that only proxies",
  'docs-floor': "the docs' floor: raw ws behind the Socket.IO docs' nginx example",
  'design-floor':
    "the kit's design floor: 4 raw ws servers sharing rooms through Redis, behind nginx that only proxies",
};

/** The fan-out variants a full or quick run measures, in its order. */
export const ALL_VARIANTS: VariantName[] = [
  'plain',
  'kit',
  'kit-cores',
  'kit-redis-cluster',
  'kit-haproxy',
  'docs-nginx',
  'cluster',
  'raw-ws',
  'nginx-floor',
  'docs-floor',
  'design-floor',
];

export interface KitVariantOptions {
  name?: 'kit' | 'kit-cores' | 'kit-streams' | 'kit-redis-cluster';
  /** Nodes (four, as the contract's NODE_PORTS, when unset). */
  nodes?: number;
  /** Kit options over the kit's defaults (the A/B harness's levers). */
  env?: NodeJS.ProcessEnv;
}

/**
 * A quick run, a smoke test that measures nothing, starts the kit with its defaults once and lends
 * it to every variant and scenario that asks for that kit (`lendKit`; `returnKit` stops it at the
 * end). A full run starts one each, so that no figure carries what the one before left.
 */
let lending: { kit?: Promise<Variant> } | undefined;

/**
 * Variants started and not stopped yet. A kit runs detached and outlives the bench unless
 * stopped; so do a proxy in front of one and a forked server whose bench was killed.
 */
const running = new Set<{ stop(): Promise<void> }>();
/** Variants starting now. */
const launching = new Set<Promise<Variant>>();
/** Set by stopEveryVariant: no variant starts after it, and one that was starting is stopped. */
let interrupted = false;
/** stopEveryVariant's work, once called: every later call and signal waits for the same. */
let stoppingAll: Promise<void> | undefined;

export function lendKit(): void {
  lending = {};
}

export async function returnKit(): Promise<void> {
  const lent = lending?.kit;
  lending = undefined;
  await (await lent?.catch(() => undefined))?.stop();
}

export async function startKitVariant(options: KitVariantOptions = {}): Promise<Variant> {
  const defaults =
    (options.name ?? 'kit') === 'kit' &&
    options.nodes === undefined &&
    Object.keys(options.env ?? {}).length === 0;
  if (lending === undefined || !defaults) return tracked(() => startKit(options));
  const lent = lending;
  // A kit that failed to start is not lent again: the next scenario tries a start of its own.
  lent.kit ??= tracked(() => startKit(options)).catch((error) => {
    lent.kit = undefined;
    throw error;
  });
  return { ...(await lent.kit), stop: async () => {} };
}

/**
 * What `start` starts, tracked while it starts and until it is stopped, so that stopEveryVariant
 * finds it; its stop runs once, however often it is called (the bench's finally blocks and
 * stopEveryVariant may both call it). Interrupted while it started, it is stopped at once.
 */
async function tracked(start: () => Promise<Variant>): Promise<Variant> {
  if (interrupted) throw new Error('the bench was interrupted');
  const starting = start();
  launching.add(starting);
  let variant: Variant;
  try {
    variant = await starting;
  } finally {
    launching.delete(starting);
  }
  let stopping: Promise<void> | undefined;
  const handle = {
    stop: (): Promise<void> => (stopping ??= variant.stop().finally(() => running.delete(handle))),
  };
  running.add(handle);
  if (interrupted) {
    await handle.stop();
    throw new Error('the bench was interrupted');
  }
  return { ...variant, stop: handle.stop };
}

async function startKit(options: KitVariantOptions): Promise<Variant> {
  const name = options.name ?? 'kit';
  const kit = await launchKit({
    nodes: options.nodes ?? (name === 'kit-cores' ? CORES : 4),
    env: {
      APP_MODULE: 'scripts/bench/apps/fanout-app.ts',
      // The kit's defaults, whatever an operator's environment says.
      NGINX_WORKERS: 'auto',
      NGINX_UPSTREAM: 'auto',
      ADAPTER: name === 'kit-streams' ? 'redis-streams' : 'redis',
      ...options.env,
    },
  });
  return {
    name,
    label: LABELS[name],
    url: kit.url,
    kind: 'socketio',
    nodePorts: kit.nodePorts,
    nodeSockets: kit.nodePorts.map((p) => socketPath(runDirOf(kit.runDir), p)),
    pids: () => kit.pids(),
    stop: () => kit.stop(),
  };
}

/**
 * The kit as it runs across hosts, on this one: REDIS_CLUSTER (its nodes' cluster clients and the
 * sharded adapter, SPUBLISH to the shard of each room's channel) on a Redis Cluster of three
 * masters on loopback (redis-cluster.ts), whose redis-servers count as the kit's own Redis does.
 */
async function startKitOnRedisCluster(): Promise<Variant> {
  const cluster = await startLoopbackCluster();
  let kit: Variant;
  try {
    kit = await startKit({
      name: 'kit-redis-cluster',
      env: { REDIS_CLUSTER: cluster.seeds, ADAPTER: 'redis-sharded' },
    });
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return {
    ...kit,
    pids: () => [...kit.pids(), ...cluster.pids()],
    stop: async () => {
      try {
        await kit.stop();
      } finally {
        await cluster.stop();
      }
    },
  };
}

/**
 * Stops every kit and other variant still running (the bench interrupted: a signal skips its
 * finally blocks); one that is starting is stopped once up. Called again, waits for the same.
 */
export function stopEveryVariant(): Promise<void> {
  stoppingAll ??= (async () => {
    interrupted = true;
    lending = undefined;
    await Promise.allSettled([...launching]);
    await Promise.all([...running].map((v) => v.stop().catch(() => undefined)));
  })();
  return stoppingAll;
}

/** stopEveryVariant's work once it was called (a signal came), else undefined. */
export function stoppingEveryVariant(): Promise<void> | undefined {
  return stoppingAll;
}

/**
 * Stops every variant still running when the process is interrupted (SIGINT, SIGTERM), then
 * exits 130: a signal skips the finally blocks that stop them, and a kit runs detached, so it
 * would outlive the bench with its nodes, nginx and Redis.
 */
export function stopVariantsOnSignal(say: (line: string) => void): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // Not `once`: a second Ctrl-C would then kill the bench halfway through stopping them.
    process.on(signal, () => {
      if (stoppingAll) return say(`${signal}: still stopping the kits`);
      say(`${signal}: stopping the kits still running`);
      void stopEveryVariant().finally(() => process.exit(130));
    });
  }
}

/**
 * The kit's nodes and Redis behind another proxy (the kit's own nginx idles, left out of the
 * accounting): `template` from templates/, rendered with DIR (a folder of the run's own), PORT
 * and `servers` (the kit's nodes), then `command` started on it, in front until stop.
 */
async function behindAnotherProxy(
  name: 'kit-haproxy' | 'docs-nginx',
  template: string,
  servers: (kit: Variant) => string,
  command: (config: string, dir: string) => [string, string[]],
  stopSignal: NodeJS.Signals,
): Promise<Variant> {
  const kit = await startKitVariant();
  const [port] = (await freePorts(1)) as [number];
  const dir = mkdtempSync(join(tmpdir(), `kit-${name.replace(/^kit-/, '')}-`));
  const config = join(dir, template.replace(/\.template$/, ''));
  writeFileSync(
    config,
    renderTemplate(readTemplate(template), { DIR: dir, PORT: String(port), SERVERS: servers(kit) }),
  );
  const [binary, args] = command(config, dir);
  const proxy = spawn(binary, args, { stdio: 'ignore' });
  const stop = async () => {
    await stopSpawned(proxy, stopSignal, stopSignal === 'SIGTERM' ? 'SIGKILL' : 'SIGTERM');
    await kit.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitHttp(`http://127.0.0.1:${port}/healthz`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name,
    label: LABELS[name],
    url: `http://127.0.0.1:${port}`,
    kind: 'socketio',
    nodePorts: kit.nodePorts,
    nodeSockets: kit.nodeSockets,
    pids: () => [
      ...processTree([proxy.pid as number]),
      ...kit.pids().filter((pid) => !isNginx(pid)),
    ],
    stop,
  };
}

/** HAProxy in front instead of nginx, over the same Unix sockets nginx uses (equal terms). */
export function startHaproxyVariant(): Promise<Variant> {
  return behindAnotherProxy(
    'kit-haproxy',
    'haproxy.cfg.template',
    (kit) =>
      (kit.nodeSockets ?? []).map((path, i) => `    server node${i + 1} unix@${path}`).join('\n'),
    (config) => ['/usr/sbin/haproxy', ['-f', config, '-db']],
    'SIGTERM',
  );
}

/**
 * A second nginx configured as the Socket.IO documentation's cluster example configures it
 * (templates/docs-nginx.conf.template), to the nodes' TCP ports.
 */
export function startDocsNginxVariant(): Promise<Variant> {
  return behindAnotherProxy(
    'docs-nginx',
    'docs-nginx.conf.template',
    (kit) => kit.nodePorts.map((p) => `        server 127.0.0.1:${p};`).join('\n'),
    (config, dir) => ['/usr/sbin/nginx', ['-p', dir, '-c', config, '-g', 'daemon off;']],
    'SIGQUIT',
  );
}

/**
 * What nginx alone costs per delivery, the floor under any design that keeps it in front: the
 * bare `ws` server (servers/raw-ws.ts) on a Unix socket, behind an nginx that does nothing but
 * proxy (templates/floor-nginx.conf.template: the kit's worker count, keepalive, no limits, no
 * log). Its server CPU per delivery is nginx's share plus the cheapest server there is.
 *
 * `docs-floor` is the same server on a TCP port behind the docs' nginx example
 * (templates/docs-nginx.conf.template): the docs' peer with the cheapest server there is. The kit's nodes cost
 * both arms alike above the bare server, so the kit against the docs' example can go no lower
 * than nginx-floor against docs-floor.
 */
export async function startNginxFloor(name: 'nginx-floor' | 'docs-floor'): Promise<Variant> {
  const [port, serverPort] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(
    join(tmpdir(), name === 'nginx-floor' ? 'kit-floor-' : 'kit-docs-floor-'),
  );
  // nginx's workers run as nobody: they must pass the folder and open the socket in it.
  chmodSync(dir, 0o711);
  const socket = join(dir, 'raw-ws.sock');
  let server: ChildProcess | undefined;
  let proxy: ChildProcess | undefined;
  const stop = async () => {
    if (proxy) await stopSpawned(proxy, 'SIGQUIT');
    if (server) await stopChild(server);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const config = join(dir, 'nginx.conf');
    if (name === 'nginx-floor') {
      server = await forkServer('raw-ws.ts', [socket]);
      writeFileSync(config, await floorNginxConfig(dir, port, [socket]));
    } else {
      server = await forkServer('raw-ws.ts', [String(serverPort)]);
      writeFileSync(
        config,
        renderTemplate(readTemplate('docs-nginx.conf.template'), {
          DIR: dir,
          PORT: String(port),
          SERVERS: `        server 127.0.0.1:${serverPort};`,
        }),
      );
    }
    proxy = spawnNginx(dir, config);
    await waitHttp(`http://127.0.0.1:${port}/healthz`);
  } catch (error) {
    await stop();
    throw error;
  }
  const pids = [proxy.pid as number, server.pid as number];
  return {
    name,
    label: LABELS[name],
    url: `http://127.0.0.1:${port}`,
    kind: 'ws',
    nodePorts: [],
    pids: () => processTree(pids),
    stop,
  };
}

/**
 * templates/floor-nginx.conf.template for servers on these Unix sockets, the kit's workers;
 * several are chosen by ip_hash, as the kit's nginx chooses its nodes.
 */
async function floorNginxConfig(dir: string, port: number, sockets: string[]): Promise<string> {
  const rlimit = await openFilesLimit();
  const servers = sockets.map((path) => `        server unix:${path};`);
  if (sockets.length > 1) servers.unshift('        ip_hash;');
  return renderTemplate(readTemplate('floor-nginx.conf.template'), {
    DIR: dir,
    PORT: String(port),
    SERVERS: servers.join('\n'),
    WORKERS: String(autoWorkers(rlimit)),
    RLIMIT: String(rlimit),
    CONNECTIONS: String(rlimit - 200),
  });
}

/**
 * What the kit's design costs at least, whatever its nodes run: four bare `ws` servers
 * (servers/raw-ws.ts), each on a Unix socket, sharing rooms through a Redis of their own as the
 * kit's nodes share them (a publication to Redis from the server that got it, heard back by
 * every server), behind nginx that only proxies, choosing a server by ip_hash as the kit's nginx
 * does. Above nginx's floor it adds what four processes and Redis cost per delivery; the kit
 * adds Socket.IO on top of that.
 */
export async function startDesignFloor(): Promise<Variant> {
  const [port] = (await freePorts(1)) as [number];
  const dir = mkdtempSync(join(tmpdir(), 'kit-design-floor-'));
  chmodSync(dir, 0o711);
  const redisSocket = join(dir, 'redis.sock');
  const children: ChildProcess[] = [];
  let redis: ChildProcess | undefined;
  let proxy: ChildProcess | undefined;
  const stop = async () => {
    if (proxy) await stopSpawned(proxy, 'SIGQUIT');
    await Promise.all(children.map(stopChild));
    if (redis) await stopSpawned(redis, 'SIGTERM', 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    redis = spawn(
      REDIS.binary,
      [
        '--port',
        '0',
        '--unixsocket',
        redisSocket,
        '--unixsocketperm',
        '700',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { cwd: dir, stdio: 'ignore' },
    );
    redis.on('error', () => {});
    const started = redis;
    await waitUntil("the floor's redis-server to listen", () => existsSync(redisSocket), {
      timeoutMs: 30_000,
      hopeless: () =>
        started.exitCode !== null || started.signalCode !== null
          ? 'redis-server exited'
          : undefined,
    });
    const sockets = ['a', 'b', 'c', 'd'].map((name) => ({ name, path: join(dir, `${name}.sock`) }));
    for (const { name, path } of sockets)
      children.push(await forkServer('raw-ws.ts', [path, redisSocket, name]));
    const config = join(dir, 'nginx.conf');
    writeFileSync(
      config,
      await floorNginxConfig(
        dir,
        port,
        sockets.map(({ path }) => path),
      ),
    );
    proxy = spawnNginx(dir, config);
    await waitHttp(`http://127.0.0.1:${port}/healthz`);
  } catch (error) {
    await stop();
    throw error;
  }
  const pids = [proxy.pid as number, redis.pid as number, ...children.map((c) => c.pid as number)];
  return {
    name: 'design-floor',
    label: LABELS['design-floor'],
    url: `http://127.0.0.1:${port}`,
    kind: 'ws',
    nodePorts: [],
    pids: () => processTree(pids),
    stop,
  };
}

/** nginx in the foreground on `config`, its prefix `dir` (stopSpawned stops it: SIGQUIT). */
function spawnNginx(dir: string, config: string): ChildProcess {
  return spawn('/usr/sbin/nginx', ['-p', dir, '-c', config, '-g', 'daemon off;'], {
    stdio: 'ignore',
  });
}

function readTemplate(file: string): string {
  return readFileSync(join(ROOT, 'scripts/bench/templates', file), 'utf8');
}

/**
 * Stops a process the bench spawned with `signal` (nginx: SIGQUIT, graceful), and after 10 s
 * with `then` (nginx: SIGTERM, which ends its workers too).
 */
async function stopSpawned(
  child: ChildProcess,
  signal: NodeJS.Signals,
  then: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill(then), 10_000);
  await exited;
  clearTimeout(timer);
}

function isNginx(pid: number): boolean {
  return programName(pid) === 'nginx';
}

/** A variant's Node processes: neither nginx nor Redis (not by the name `node`: Node 24 calls
 * its main thread MainThread). */
export function isNodeProcess(pid: number): boolean {
  return !isNginx(pid) && programName(pid) !== 'redis-server';
}

async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  await waitUntil(`${url} to answer`, () => httpOk(url), { timeoutMs });
}

function forkServer(file: string, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = fork(join(ROOT, 'scripts/bench/servers', file), args, {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('message', (m) => (m === 'ready' ? resolve(child) : undefined));
    child.once('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  await stopProcess(
    child.pid,
    'SIGTERM',
    5000,
    () => child.exitCode !== null || child.signalCode !== null,
  );
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
    case 'kit-cores':
    case 'kit-streams':
      return startKitVariant({ name });
    case 'kit-redis-cluster':
      return tracked(startKitOnRedisCluster);
    case 'nginx-floor':
    case 'docs-floor':
      return tracked(() => startNginxFloor(name));
    case 'design-floor':
      return tracked(startDesignFloor);
    case 'kit-haproxy':
      return tracked(startHaproxyVariant);
    case 'docs-nginx':
      return tracked(startDocsNginxVariant);
    case 'plain':
      return tracked(() => startForked('plain', 'plain.ts'));
    case 'cluster':
      return tracked(() => startForked('cluster', 'cluster.ts'));
    case 'raw-ws':
      return tracked(() => startForked('raw-ws', 'raw-ws.ts'));
  }
}

export { cpuSeconds, programName, rssBytes } from '../kit/proc.ts';
export { isNginx };
