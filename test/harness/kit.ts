// Starts a real kit (redis-server, nodes, nginx) through ./scripts/up.sh --detach on ports and a
// RUN_DIR chosen at run time, and stops it through ./scripts/down.sh.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isolatedKitEnv } from '../../scripts/kit/isolated-env.ts';
import { freePorts } from '../../scripts/kit/ports.ts';
import { ROOT } from '../../services/node/config.ts';

const run = promisify(execFile);

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one of the kit's scripts (`up` for up.sh, `emit`, …) with the given environment and
 * nothing of the kit's options from this shell or a .env file (isolated-env.ts): `env` must name
 * RUN_DIR and ports of its own, or the script looks at the operator's default kit.
 */
export function script(
  name: string,
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  timeoutMs = 120_000,
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const door = join(
      ROOT,
      'scripts',
      existsSync(join(ROOT, 'scripts', `${name}.sh`)) ? `${name}.sh` : name,
    );
    const child = spawn(door, args, {
      cwd: ROOT,
      env: isolatedKitEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name}.sh did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export { isolatedKitEnv } from '../../scripts/kit/isolated-env.ts';
export { freePorts, portFree } from '../../scripts/kit/ports.ts';
export { processTree } from '../../scripts/kit/proc.ts';

export interface Kit {
  readonly port: number;
  readonly nodePorts: number[];
  readonly redisPort: number;
  readonly runDir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly url: string;
  emitToken(): string;
  /** Pid recorded by the kit for a part (`redis`, `nginx`, `node-<port>`, `supervisor`). */
  pid(part: string): number;
  stop(): Promise<void>;
}

export interface KitOptions {
  nodes?: number;
  env?: NodeJS.ProcessEnv;
}

export async function startKit(options: KitOptions = {}): Promise<Kit> {
  const nodes = options.nodes ?? 4;
  const [port, redisPort, ...nodePorts] = (await freePorts(nodes + 2)) as [
    number,
    number,
    ...number[],
  ];
  const runDir = mkdtempSync(join(tmpdir(), 'kit-test-'));
  const env: NodeJS.ProcessEnv = {
    PORT: String(port),
    NODE_PORTS: nodePorts.join(','),
    REDIS_PORT: String(redisPort),
    RUN_DIR: runDir,
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  const up = await script('up', env, ['--detach']);
  if (up.code !== 0) {
    await script('down', env);
    throw new Error(`up.sh failed (${up.code}): ${up.stderr}`);
  }
  return {
    port,
    nodePorts,
    redisPort,
    runDir,
    env,
    url: `http://127.0.0.1:${port}`,
    emitToken: () => readFileSync(join(runDir, 'emit-token'), 'utf8').trim(),
    pid: (part) => Number(readFileSync(join(runDir, 'pids', `${part}.pid`), 'utf8').split(' ')[0]),
    async stop() {
      const down = await script('down', env);
      if (down.code !== 0) throw new Error(`down.sh failed: ${down.stderr}`);
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** Processes whose command line or working directory mentions `needle`. */
export async function processesMentioning(needle: string): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,args=']);
  const found = stdout.split('\n').filter((l) => l.includes(needle) && !l.includes('ps -eo'));
  const { stdout: cwds } = await run('sh', [
    '-c',
    `for p in /proc/[0-9]*; do d=$(readlink $p/cwd 2>/dev/null) && case "$d" in ${needle}*) echo "\${p#/proc/} cwd=$d";; esac; done`,
  ]);
  return [...found, ...cwds.split('\n').filter(Boolean)];
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
