// Everything checked before anything starts. Each failure is a ConfigError naming the variable
// and value, so up.sh refuses with one clear line and leaves nothing running.
import { execFile, fork } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError, ROOT } from '../../services/node/config.ts';
import { type KitConfig, ownRedis } from './config.ts';
import type { AppModuleVerdict } from './load-app-module.ts';
import { portFree } from './ports.ts';
import { redisAnswers } from './probes.ts';

const run = promisify(execFile);

async function holder(port: number): Promise<string> {
  try {
    const { stdout } = await run('ss', ['-Htlnp', `sport = :${port}`], { timeout: 3000 });
    const match = /users:\(\("([^"]+)",pid=(\d+)/.exec(stdout);
    return match ? ` by ${match[1]} (pid ${match[2]})` : '';
  } catch {
    return '';
  }
}

/** The ports this host's role listens on, each free. */
export async function checkPorts(config: KitConfig): Promise<void> {
  const wanted: Array<[variable: string, shown: string, port: number, host: string]> = [];
  if (config.role !== 'nodes') wanted.push(['PORT', String(config.port), config.port, '0.0.0.0']);
  if (config.role !== 'balancer') {
    for (const p of config.nodePorts) {
      wanted.push(['NODE_PORTS', config.nodePorts.join(','), p, config.nodeHost]);
    }
  }
  if (ownRedis(config.role, config.redisUrl, config.redisCluster)) {
    wanted.push(['REDIS_PORT', String(config.redisPort), config.redisPort, '127.0.0.1']);
  }
  for (const [variable, shown, port, host] of wanted) {
    if (!(await portFree(port, host))) {
      throw new ConfigError(variable, shown, `port ${port} is already in use${await holder(port)}`);
    }
  }
}

/** The outside Redis (REDIS_URL), or at least one seed of REDIS_CLUSTER, answers PING. */
export async function checkRedisUrl(config: KitConfig): Promise<void> {
  if (config.role === 'balancer') return;
  const hide = (url: string) => url.replace(/\/\/([^@]*)@/, '//***@');
  if (config.redisUrl !== undefined && !(await redisAnswers(config.redisUrl, 3000))) {
    throw new ConfigError(
      'REDIS_URL',
      hide(config.redisUrl),
      'Redis does not answer PING there (unreachable, or wrong password)',
    );
  }
  const seeds = config.redisCluster;
  if (seeds === undefined) return;
  const answers = await Promise.all(seeds.map((seed) => redisAnswers(seed, 3000)));
  if (!answers.includes(true)) {
    throw new ConfigError(
      'REDIS_CLUSTER',
      seeds.map(hide).join(','),
      'no seed answers PING (unreachable, or wrong password)',
    );
  }
}

/** Loads APP_MODULE in a throw-away process (load-app-module.ts), exactly as a node will. */
export async function checkAppModule(config: KitConfig): Promise<void> {
  if (config.role === 'balancer') return;
  const child = fork(join(ROOT, 'scripts/kit/load-app-module.ts'), [config.appModule], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    timeout: 20_000,
  });
  let stderr = '';
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  const verdict = await new Promise<AppModuleVerdict>((resolve) => {
    child.once('message', (message) => resolve(message as AppModuleVerdict));
    child.once('exit', (code, signal) =>
      resolve({
        ok: false,
        reason:
          stderr.trim().split('\n').at(-1) || `the check exited (${signal ?? `code ${code}`})`,
      }),
    );
  });
  child.kill();
  if (!verdict.ok) {
    throw new ConfigError('APP_MODULE', config.appModule, `does not load: ${verdict.reason}`);
  }
}
