// ./scripts/up.sh [--detach|-d]: check everything, start Redis, the nodes and nginx, print a
// summary, and supervise. With --detach the supervisor runs in the background (its own session
// and log file) and this command returns once the kit is ready.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BootPlan, bootKit, planBoot, refuseLinkedLogs } from './kit/boot.ts';
import { type KitConfig, loadKitConfig, ownRedis, readEnv, roleArgument } from './kit/config.ts';
import { isLoopback, kitParts, SUPERVISOR } from './kit/parts.ts';
import { livePid, removePid, writePid } from './kit/pid-files.ts';
import { checkAppModule, checkPorts, checkRedisUrl } from './kit/preconditions.ts';
import { alive } from './kit/proc.ts';
import { describeOwnRedisWay } from './kit/redis-server.ts';
import { renderNginx } from './kit/render-nginx.ts';
import { clearProgress, fail, progressLine, shortPath, table, timestamped } from './kit/report.ts';
import {
  prepareRunDir,
  type RunDir,
  readState,
  recordRole,
  runDir,
  writeState,
} from './kit/run-dir.ts';
import { openLog } from './kit/safe-files.ts';
import { handOverStartLock, releaseStartLock, takeStartLock } from './kit/start-lock.ts';
import { stopProcess } from './kit/stop-process.ts';
import { Supervisor } from './kit/supervisor.ts';
import { ensureSystemPackages, NGINX, REDIS } from './kit/system-packages.ts';
import { chooseUpstream, describeUpstream } from './kit/upstream.ts';
import { waitUntil } from './kit/wait.ts';

const args = process.argv.slice(2);
const detach = args.includes('--detach') || args.includes('-d');
/** Internal: this process is the background supervisor started by `up.sh --detach`. */
const supervise = args.includes('--supervise');
const unknown = args.filter(
  (a, i) =>
    !['--detach', '-d', '--supervise', '--role'].includes(a) &&
    !a.startsWith('--role=') &&
    args[i - 1] !== '--role',
);
if (unknown.length > 0)
  fail(
    'up.sh',
    `unknown argument ${unknown[0]} (usage: ./scripts/up.sh [--detach] [--role all|nodes|balancer])`,
    'KIT_ERR_USAGE',
  );

let config: KitConfig;
try {
  const env = readEnv();
  const role = roleArgument(args);
  config = loadKitConfig(role === undefined ? env : { ...env, KIT_ROLE: role });
} catch (error) {
  fail('up.sh', error);
}
const dir = runDir(config.runDir);
const began = Date.now();

/** What an operator must know about who can reach this host's parts. */
function exposure(config: KitConfig): string[] {
  if (config.role === 'balancer' || isLoopback(config.nodeHost)) return [];
  if (config.balancers === undefined) {
    return [
      `  warning     the nodes listen on ${config.nodeHost}: anyone on that network can reach them`,
      '              directly, and every client of a balancer on another host counts as that',
      "              balancer's address for the per-address limits (set BALANCERS to the",
      "              balancers' addresses: others are refused, their X-Real-IP trusted)",
    ];
  }
  return [`  nodes       accept ${config.balancers.join(', ')} and this host only (BALANCERS)`];
}

function summary(config: KitConfig, dir: RunDir, detached: boolean): string {
  const rows: string[][] = [['part', 'pid', 'address', 'log']];
  if (config.role !== 'balancer') {
    if (config.redisUrl !== undefined) rows.push(['redis', '-', 'REDIS_URL (external)', '-']);
    if (config.redisCluster !== undefined) {
      rows.push(['redis', '-', `REDIS_CLUSTER (${config.redisCluster.length} seeds)`, '-']);
    }
  }
  for (const part of kitParts(config, dir)) {
    rows.push([
      part.name,
      String(livePid(dir, part.name) ?? '-'),
      part.address,
      shortPath(part.log),
    ]);
  }
  const supervisorLog = detached ? shortPath(join(dir.logs, 'supervisor.log')) : '(this terminal)';
  rows.push(['supervisor', String(livePid(dir, 'supervisor') ?? '-'), '', supervisorLog]);
  const seconds = ((Date.now() - began) / 1000).toFixed(1);
  const where =
    config.role === 'nodes'
      ? `role nodes, ${config.nodePorts.length} nodes on ${config.nodeHost}, adapter ${config.adapter}`
      : `${config.tls ? 'https' : 'http'}://localhost:${config.port}/${config.role === 'all' ? '' : ` (role ${config.role})`}`;
  return [
    `Socket.IO kit ready in ${seconds}s: ${where}`,
    '',
    table(rows)
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
    '',
    ...(config.role === 'nodes'
      ? []
      : [`  upstream    ${describeUpstream(chooseUpstream(config, dir))}`]),
    ...(ownRedis(config.role, config.redisUrl, config.redisCluster)
      ? [`  redis       ${describeOwnRedisWay(config, dir)}`]
      : []),
    ...exposure(config),
    ...(config.role === 'balancer'
      ? []
      : [
          `  users       ${readState(dir)?.serviceUser ?? '-'}`,
          `  emit token  ${config.emitToken ? '(EMIT_TOKEN)' : shortPath(join(dir.root, 'emit-token'))}`,
          `  admin UI    ${config.adminPassword ? 'on, user admin (ADMIN_PASSWORD), namespace /admin' : 'off (set ADMIN_PASSWORD)'}`,
        ]),
    `  status      ./scripts/status.sh     stop  ./scripts/down.sh${detached ? '' : '  (or Ctrl-C)'}`,
    '',
  ].join('\n');
}

/** Everything that can be known wrong before anything starts; nginx's configuration is rendered
 * and checked here, for the supervisor to use. */
async function checkBeforeStart(): Promise<void> {
  const parts = kitParts(config, dir);
  await ensureSystemPackages([
    ...(parts.some((p) => p.kind === 'nginx') ? [NGINX] : []),
    ...(parts.some((p) => p.kind === 'redis') ? [REDIS] : []),
  ]);
  prepareRunDir(dir);
  takeStartLock(dir);
  refuseLinkedLogs(parts, dir);
  const progress = progressLine();
  progress('checking ports, Redis, APP_MODULE and the nginx configuration');
  await checkPorts(config);
  await checkRedisUrl(config);
  await checkAppModule(config);
  if (parts.some((p) => p.kind === 'nginx')) await renderNginx(config, dir);
  // Every check passed: status.sh, down.sh, reload.sh and restart.sh act on this role from now.
  recordRole(dir, config.role);
  clearProgress();
}

/** Runs the kit in this process until SIGINT, SIGTERM or SIGHUP. */
async function superviseHere(detached: boolean): Promise<void> {
  const say = (line: string) => process.stdout.write(`${timestamped(line)}\n`);
  // A terminal that hangs up or a pipe whose reader died (`up.sh | tee`, then Ctrl-C) must not
  // kill the supervisor halfway through stopping the kit: output errors are ignored.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  writePid(dir, 'supervisor', process.pid);
  const plan: BootPlan = await planBoot(config, dir);
  const supervisor = new Supervisor(dir, say, plan.runAs);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping nginx, the nodes and Redis`);
    writeState(dir, { status: 'stopping', supervisorPid: process.pid });
    await supervisor.stopAll();
    writeState(dir, { status: 'stopped', supervisorPid: process.pid });
    removePid(dir, 'supervisor');
    releaseStartLock(dir);
    say('stopped');
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(signal, () => void stop(signal));

  try {
    await bootKit(config, dir, plan, supervisor, detached ? say : progressLine());
  } catch (error) {
    if (!detached) clearProgress();
    writeState(dir, {
      status: 'failed',
      supervisorPid: process.pid,
      error: (error as Error).message,
    });
    removePid(dir, 'supervisor');
    releaseStartLock(dir);
    fail('up.sh', error);
  }
  if (detached) {
    say('ready');
  } else {
    clearProgress();
    process.stdout.write(summary(config, dir, false));
  }
}

/** Starts the supervisor in its own session and waits until it reports ready or failed. */
async function startDetached(): Promise<void> {
  const log = openLog(join(dir.logs, 'supervisor.log'));
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', self, '--supervise'], {
    detached: true,
    stdio: ['ignore', log, log],
    // --role, if given, holds for the supervisor too.
    env: { ...process.env, KIT_ROLE: config.role },
  });
  child.unref();
  const pid = child.pid ?? fail('up.sh', 'could not start the supervisor', 'KIT_ERR_START');
  handOverStartLock(dir, pid);
  // Interrupted while waiting: the kit must not go on starting in the background.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, async () => {
      clearProgress();
      await stopProcess(pid, 'SIGTERM', SUPERVISOR.graceMs);
      fail(
        'up.sh',
        `interrupted (${signal}); everything started so far was stopped`,
        'KIT_ERR_INTERRUPTED',
      );
    });
  }
  const outcome = await waitUntil(
    'Redis, the nodes and nginx',
    () => {
      const state = readState(dir);
      if (state?.supervisorPid === pid && state.status !== 'starting') return state;
      if (!alive(pid)) return { status: 'exited' as const, error: undefined };
      return undefined;
    },
    // The supervisor gives up on its own (each part has its readiness limit); this is a backstop.
    { timeoutMs: 10 * 60_000, maxIntervalMs: 100, progress: progressLine() },
  );
  if (outcome.status !== 'ready') {
    clearProgress();
    fail(
      'up.sh',
      outcome.status === 'exited'
        ? `the supervisor exited early; see ${shortPath(join(dir.logs, 'supervisor.log'))}`
        : (outcome.error ?? 'failed to start'),
      'KIT_ERR_START',
    );
  }
  clearProgress();
  process.stdout.write(summary(config, dir, true));
}

try {
  if (!supervise) await checkBeforeStart();
  if (detach && !supervise) await startDetached();
} catch (error) {
  releaseStartLock(dir);
  fail('up.sh', error);
}
if (!detach || supervise) await superviseHere(supervise);
