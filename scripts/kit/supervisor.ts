// Starts the kit's processes in order (Redis, the nodes, nginx), restarts any that dies, and
// stops them all in reverse order. Each child runs in its own process group with its own log
// file and /dev/null as stdin, so it never depends on the terminal that started the kit.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from 'zx';
import { hashAdminPassword } from '../../services/node/admin-auth.ts';
import { type KitConfig, ROOT } from '../../services/node/config.ts';
import { type Liveness, LivenessWatch } from './liveness.ts';
import { httpFailure, httpOk, redisAnswers } from './probes.ts';
import { ownRedisUrl, REDIS_BIN, writeRedisConf } from './redis-server.ts';
import { NGINX_BIN, nginxArgs, renderNginx } from './render-nginx.ts';
import { shortPath } from './report.ts';
import {
  handOverWritableDirs,
  prepareRunDir,
  type RunDir,
  removePid,
  secret,
  writePid,
  writeState,
} from './run-dir.ts';
import { openLog } from './safe-files.ts';
import { chooseServiceUser, describeServiceUser, type RunAs } from './service-user.ts';
import { nodeSocket } from './upstream.ts';

export interface PartSpec {
  readonly name: string;
  readonly kind: 'redis' | 'node' | 'nginx';
  readonly address: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly log: string;
  readonly stopSignal: NodeJS.Signals;
  /** How long a stop may take before SIGKILL. */
  readonly stopGraceMs: number;
  ready(): Promise<boolean>;
  /** Probed once the part has been ready; a part silent too long is killed and started again. */
  readonly liveness?: Liveness;
  /** The unprivileged user it runs as when the kit runs as root (service-user.ts). */
  readonly runAs?: RunAs;
}

interface Running {
  readonly spec: PartSpec;
  child: ChildProcess;
  startedAt: number;
  restarts: number;
  nextDelayMs: number;
  restartTimer?: NodeJS.Timeout;
  watch?: LivenessWatch;
}

export type Say = (line: string) => void;

const FIRST_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 10_000;
/** How long a node may take to become ready after a start. */
const NODE_READY_TIMEOUT_MS = 45_000;
/** A part that ran this long before dying is restarted at once again; a faster death backs off. */
const STABLE_AFTER_MS = 30_000;

/** The last line of a log that says something (not a stack frame), for a one-line error. */
function lastLogLine(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => l.trim());
    return (
      lines
        .filter((l) => l !== '' && !l.startsWith('at '))
        .at(-1)
        ?.slice(0, 300) ?? 'no output'
    );
  } catch {
    return 'no log';
  }
}

export class Supervisor {
  private readonly parts = new Map<string, Running>();
  private stopping = false;

  constructor(
    private readonly dir: RunDir,
    private readonly say: Say,
  ) {}

  get partNames(): string[] {
    return [...this.parts.keys()];
  }

  pid(name: string): number | undefined {
    return this.parts.get(name)?.child.pid;
  }

  start(spec: PartSpec): void {
    // A signal may arrive between two steps of the start: nothing new starts after stopAll began.
    if (this.stopping) return;
    const existing = this.parts.get(spec.name);
    const running: Running = existing ?? {
      spec,
      child: undefined as unknown as ChildProcess,
      startedAt: 0,
      restarts: 0,
      nextDelayMs: FIRST_RESTART_DELAY_MS,
    };
    const out = openLog(spec.log);
    const child = spawn(spec.command, spec.args, {
      cwd: ROOT,
      env: spec.env ?? process.env,
      detached: true,
      stdio: ['ignore', out, out],
      ...(spec.runAs ? { uid: spec.runAs.uid, gid: spec.runAs.gid } : {}),
    });
    closeSync(out);
    running.child = child;
    running.startedAt = Date.now();
    this.parts.set(spec.name, running);
    if (child.pid !== undefined) writePid(this.dir, spec.name, child.pid, spec.command);
    child.once('error', (error) => {
      this.say(`${spec.name}: could not start: ${error.message}`);
      // A spawn that failed (EAGAIN, EMFILE, ENOENT) never emits 'exit': retry like a crash.
      if (child.pid === undefined) this.onExit(running, child, null, null);
    });
    child.once('exit', (code, signal) => this.onExit(running, child, code, signal));
    running.watch?.stop();
    running.watch = this.watch(spec, child);
  }

  /** Kills a part that stopped answering; its exit then takes the ordinary restart path. */
  private watch(spec: PartSpec, child: ChildProcess): LivenessWatch | undefined {
    if (spec.liveness === undefined || child.pid === undefined) return undefined;
    const pid = child.pid;
    return new LivenessWatch({
      name: spec.name,
      liveness: spec.liveness,
      ready: () => spec.ready(),
      refusedGraceMs: spec.stopGraceMs,
      readyTimeoutMs: NODE_READY_TIMEOUT_MS,
      onSilent: (why) => {
        if (this.stopping || child.exitCode !== null || child.signalCode !== null) return;
        this.say(`${why}; killing it (SIGKILL) and starting it again`);
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {}
      },
    });
  }

  private onExit(
    running: Running,
    child: ChildProcess,
    code: number | null,
    signal: string | null,
  ): void {
    if (running.child !== child) return;
    running.watch?.stop();
    removePid(this.dir, running.spec.name);
    // What the part left in its process group goes too: nginx workers outlive a killed master,
    // keep serving and hold the port (reuseport lets a new master bind beside them).
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }
    if (this.stopping) return;
    const uptime = Date.now() - running.startedAt;
    running.nextDelayMs = uptime > STABLE_AFTER_MS ? FIRST_RESTART_DELAY_MS : running.nextDelayMs;
    const delay = running.nextDelayMs;
    running.nextDelayMs = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
    running.restarts += 1;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    this.say(
      `${running.spec.name} exited (${how}) after ${(uptime / 1000).toFixed(1)}s; ` +
        `restarting in ${(delay / 1000).toFixed(1)}s (restart #${running.restarts})`,
    );
    running.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      try {
        this.start(running.spec);
      } catch (error) {
        this.say(`${running.spec.name} not restarted: ${(error as Error).message}`);
      }
    }, delay);
  }

  /** Polls every part until ready; throws naming the parts that were not ready in time. */
  async waitReady(names: readonly string[], timeoutMs: number, progress?: Say): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const pending = new Set(names);
    let shown = '';
    while (pending.size > 0) {
      await Promise.all(
        [...pending].map(async (name) => {
          const running = this.parts.get(name);
          if (await running?.spec.ready()) {
            running?.watch?.markReady();
            pending.delete(name);
          }
        }),
      );
      const line = `waiting for ${[...pending].join(', ') || 'nothing'} (${names.length - pending.size}/${names.length} ready)`;
      if (pending.size > 0 && line !== shown) {
        progress?.(line);
        shown = line;
      }
      if (pending.size === 0) return;
      // A part that keeps dying while starting will not get better by waiting.
      const failing = [...pending].find((n) => (this.parts.get(n)?.restarts ?? 0) >= 3);
      if (failing !== undefined || Date.now() > deadline) {
        const name = failing ?? ([...pending][0] as string);
        const log = this.parts.get(name)?.spec.log ?? '';
        const why = failing
          ? 'keeps exiting while starting'
          : `not ready after ${timeoutMs / 1000}s`;
        throw new Error(`${name} ${why}: ${lastLogLine(log)} (see ${shortPath(log)})`);
      }
      await sleep(100);
    }
  }

  /** Stops one part and waits for it to exit; SIGKILL after its grace period. */
  private async stopPart(running: Running): Promise<void> {
    clearTimeout(running.restartTimer);
    running.watch?.stop();
    const { child, spec } = running;
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(spec.stopSignal);
    const inTime = await Promise.race([
      exited.then(() => true),
      sleep(spec.stopGraceMs).then(() => false),
    ]);
    if (!inTime) {
      this.say(`${spec.name} did not stop within ${spec.stopGraceMs / 1000}s; killing it`);
      // The whole process group: nginx's workers too.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      await exited;
    }
    removePid(this.dir, spec.name);
  }

  /** nginx first (no new clients), then the nodes together, then Redis. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const running of this.parts.values()) running.watch?.stop();
    const order: Array<PartSpec['kind']> = ['nginx', 'node', 'redis'];
    for (const kind of order) {
      await Promise.all(
        [...this.parts.values()].filter((r) => r.spec.kind === kind).map((r) => this.stopPart(r)),
      );
    }
  }
}

/** A part as an operator sees it: where it listens and where it logs. */
export interface PartPlace {
  readonly name: string;
  readonly kind: PartSpec['kind'];
  readonly address: string;
  readonly log: string;
}

/** The parts this configuration runs; reads and makes no secret (status.sh, up.sh's summary). */
export function partPlaces(config: KitConfig, dir: RunDir): PartPlace[] {
  const log = (name: string) => join(dir.logs, `${name}.log`);
  const redis: PartPlace[] =
    config.redisUrl === undefined
      ? [
          {
            name: 'redis',
            kind: 'redis',
            address: `127.0.0.1:${config.redisPort}`,
            log: log('redis'),
          },
        ]
      : [];
  const nodes = config.nodePorts.map(
    (port): PartPlace => ({
      name: `node-${port}`,
      kind: 'node',
      address: `127.0.0.1:${port}`,
      log: log(`node-${port}`),
    }),
  );
  const nginx: PartPlace = {
    name: 'nginx',
    kind: 'nginx',
    address: `0.0.0.0:${config.port}`,
    log: log('nginx-error'),
  };
  return [...redis, ...nodes, nginx];
}

/**
 * Creates every log the kit writes (the parts', nginx's access log, the supervisor's) or throws if
 * one is a symbolic link: nginx opens its own logs as root, and `nginx -t` already writes one.
 */
export function refuseLinkedLogs(config: KitConfig, dir: RunDir): void {
  const extra = ['nginx-access.log', 'supervisor.log'].map((f) => join(dir.logs, f));
  for (const log of [...partPlaces(config, dir).map((p) => p.log), ...extra]) {
    closeSync(openLog(log));
  }
}

export interface KitParts {
  readonly redis?: PartSpec;
  readonly nodes: readonly PartSpec[];
  readonly nginx: PartSpec;
}

/** The processes to run, with commands, environment and readiness checks; makes the secrets. */
function kitParts(
  config: KitConfig,
  dir: RunDir,
  env: NodeJS.ProcessEnv,
  runAs: RunAs | undefined,
): KitParts {
  const redisUrl = config.redisUrl ?? ownRedisUrl(config, dir);
  const emitToken = config.emitToken ?? secret(join(dir.root, 'emit-token'));
  // Unset ADMIN_PASSWORD: no hash handed over, the nodes keep the Admin UI off.
  const adminHash =
    config.adminPassword === undefined
      ? {}
      : { KIT_ADMIN_PASSWORD_HASH: hashAdminPassword(config.adminPassword) };

  const spec = (place: PartPlace): PartSpec => {
    switch (place.kind) {
      case 'redis':
        return {
          ...place,
          command: REDIS_BIN,
          args: [join(dir.redis, 'redis.conf')],
          runAs,
          // SIGTERM: redis-server writes its data and exits.
          stopSignal: 'SIGTERM',
          stopGraceMs: 15_000,
          ready: () => redisAnswers(redisUrl, 1000),
        };
      case 'node': {
        const port = Number(place.address.split(':')[1]);
        const socket = nodeSocket(dir, port);
        return {
          ...place,
          command: process.execPath,
          args: ['--import', 'tsx', join(ROOT, 'services/node/main.ts')],
          runAs,
          env: {
            ...env,
            APP_MODULE: config.appModule,
            LOG_LEVEL: config.logLevel,
            KIT_NODE_ID: place.name,
            KIT_NODE_PORT: String(port),
            ...(socket ? { KIT_NODE_SOCKET: socket } : {}),
            KIT_REDIS_URL: redisUrl,
            KIT_EMIT_TOKEN: emitToken,
            ...adminHash,
          },
          stopSignal: 'SIGTERM',
          stopGraceMs: 12_000,
          ready: () => httpOk(`http://127.0.0.1:${port}/readyz`),
          liveness: {
            what: '/healthz',
            check: () => httpFailure(`http://127.0.0.1:${port}/healthz`),
          },
        };
      }
      case 'nginx':
        return {
          ...place,
          command: NGINX_BIN,
          args: [...nginxArgs(dir), '-g', 'daemon off;'],
          // SIGQUIT: graceful; open WebSockets get a few seconds before SIGKILL ends the group.
          stopSignal: 'SIGQUIT',
          stopGraceMs: 3_000,
          ready: () => httpOk(`http://127.0.0.1:${config.port}/healthz`),
        };
    }
  };
  const specs = partPlaces(config, dir).map(spec);
  return {
    redis: specs.find((s) => s.kind === 'redis'),
    nodes: specs.filter((s) => s.kind === 'node'),
    nginx: specs.find((s) => s.kind === 'nginx') as PartSpec,
  };
}

/** Brings everything up in order; on any failure stops what it started and throws. */
export async function startKit(
  config: KitConfig,
  dir: RunDir,
  env: NodeJS.ProcessEnv,
  supervisor: Supervisor,
  progress: Say,
): Promise<KitParts> {
  prepareRunDir(dir);
  refuseLinkedLogs(config, dir);
  const chosen = await chooseServiceUser(config);
  const serviceUser = describeServiceUser(chosen);
  writeState(dir, { status: 'starting', supervisorPid: process.pid, serviceUser });
  const parts = kitParts(config, dir, env, chosen.runAs);
  try {
    await renderNginx(config, dir);
    if (parts.redis) writeRedisConf(config, dir);
    if (chosen.runAs) handOverWritableDirs(dir, chosen.runAs);
    if (parts.redis) {
      supervisor.start(parts.redis);
      await supervisor.waitReady([parts.redis.name], 15_000, progress);
    }
    for (const node of parts.nodes) supervisor.start(node);
    await supervisor.waitReady(
      parts.nodes.map((n) => n.name),
      NODE_READY_TIMEOUT_MS,
      progress,
    );
    supervisor.start(parts.nginx);
    await supervisor.waitReady([parts.nginx.name], 15_000, progress);
  } catch (error) {
    await supervisor.stopAll();
    throw error;
  }
  writeState(dir, { status: 'ready', supervisorPid: process.pid, serviceUser });
  return parts;
}
