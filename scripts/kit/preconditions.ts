// Everything checked before anything starts. Each failure is a ConfigError naming the variable
// and value, so up.sh refuses with one clear line and leaves nothing running.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError, ROOT } from '../../services/node/config.ts';
import type { KitConfig } from './config.ts';
import { livePid } from './pid-files.ts';
import { portFree } from './ports.ts';
import { redisAnswers } from './probes.ts';
import type { RunDir } from './run-dir.ts';

const run = promisify(execFile);

export class AlreadyRunningError extends Error {
  readonly code = 'KIT_ERR_RUNNING';
}

export function ensureNotRunning(dir: RunDir): void {
  const pid = livePid(dir, 'supervisor');
  if (pid !== undefined) {
    throw new AlreadyRunningError(
      `the kit is already running (or starting) from RUN_DIR=${dir.root} (supervisor pid ${pid}); stop it with ./scripts/down.sh`,
    );
  }
}

async function holder(port: number): Promise<string> {
  try {
    const { stdout } = await run('ss', ['-Htlnp', `sport = :${port}`], { timeout: 3000 });
    const match = /users:\(\("([^"]+)",pid=(\d+)/.exec(stdout);
    return match ? ` by ${match[1]} (pid ${match[2]})` : '';
  } catch {
    return '';
  }
}

export async function checkPorts(config: KitConfig): Promise<void> {
  const wanted: Array<[variable: string, shown: string, port: number, host: string]> = [
    ['PORT', String(config.port), config.port, '0.0.0.0'],
    ...config.nodePorts.map(
      (p) =>
        ['NODE_PORTS', config.nodePorts.join(','), p, '127.0.0.1'] as [
          string,
          string,
          number,
          string,
        ],
    ),
  ];
  if (config.redisUrl === undefined) {
    wanted.push(['REDIS_PORT', String(config.redisPort), config.redisPort, '127.0.0.1']);
  }
  for (const [variable, shown, port, host] of wanted) {
    if (!(await portFree(port, host))) {
      throw new ConfigError(variable, shown, `port ${port} is already in use${await holder(port)}`);
    }
  }
}

export async function checkRedisUrl(config: KitConfig): Promise<void> {
  if (config.redisUrl === undefined) return;
  if (!(await redisAnswers(config.redisUrl, 3000))) {
    const shown = config.redisUrl.replace(/\/\/([^@]*)@/, '//***@');
    throw new ConfigError(
      'REDIS_URL',
      shown,
      'Redis does not answer PING there (unreachable, or wrong password)',
    );
  }
}

/** Loads APP_MODULE in a throw-away process, exactly as a node will. */
export async function checkAppModule(config: KitConfig): Promise<void> {
  const loader = pathToFileURL(join(ROOT, 'services/node/app-loader.ts')).href;
  const probe = `const { loadApplication } = await import(${JSON.stringify(loader)});
try { await loadApplication(${JSON.stringify(config.appModule)}); }
catch (error) { console.error('KIT_PROBE ' + (error.reason ?? error.message)); process.exit(2); }`;
  try {
    await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
      cwd: ROOT,
      timeout: 20_000,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    const reason =
      /KIT_PROBE (.*)/.exec(stderr)?.[1] ??
      (stderr.trim().split('\n').at(-1) || (error as Error).message);
    throw new ConfigError('APP_MODULE', config.appModule, `does not load: ${reason.trim()}`);
  }
}
