// The one launcher of whole throw-away kits, for the tests and the bench: free ports, a RUN_DIR
// of its own, started with `up.sh --detach` and stopped with `down.sh`, with nothing of this
// shell's or .env's kit options (isolated-env.ts), so it never meets an operator's kit.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../services/node/config.ts';
import { loadKitConfig } from './config.ts';
import { isolatedKitEnv } from './isolated-env.ts';
import { kitParts, localUrl } from './parts.ts';
import { pidFile, recordedPid } from './pid-files.ts';
import { freePorts } from './ports.ts';
import { processTree } from './proc.ts';
import { runDir as runDirAt } from './run-dir.ts';

export interface DoorResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs one of the kit's doors (`up` for ./scripts/up.sh, …) with `env` and nothing else of the
 * kit's options: `env` must name a RUN_DIR and ports of its own, or the door looks at the
 * operator's default kit.
 */
export function runDoor(
  name: string,
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  timeoutMs = 120_000,
): Promise<DoorResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'scripts', `${name}.sh`), args, {
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

export interface LaunchedKit {
  readonly port: number;
  readonly nodePorts: number[];
  readonly redisPort: number;
  readonly runDir: string;
  /** What it was started with: give it to runDoor to act on this kit. */
  readonly env: NodeJS.ProcessEnv;
  readonly url: string;
  emitToken(): string;
  /** The pid recorded for a part (`redis`, `nginx`, `node-<port>`, `supervisor`). */
  pid(part: string): number;
  /** Every server process of the kit now (nginx's workers included), not the supervisor. */
  pids(): number[];
  stop(): Promise<void>;
}

export interface LaunchOptions {
  nodes?: number;
  env?: NodeJS.ProcessEnv;
}

export async function launchKit(options: LaunchOptions = {}): Promise<LaunchedKit> {
  const nodes = options.nodes ?? 4;
  const [port, redisPort, ...nodePorts] = (await freePorts(nodes + 2)) as [
    number,
    number,
    ...number[],
  ];
  const runDir = mkdtempSync(join(tmpdir(), 'kit-launched-'));
  const env: NodeJS.ProcessEnv = {
    PORT: String(port),
    NODE_PORTS: nodePorts.join(','),
    REDIS_PORT: String(redisPort),
    RUN_DIR: runDir,
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  const up = await runDoor('up', env, ['--detach']);
  if (up.code !== 0) {
    await runDoor('down', env);
    rmSync(runDir, { recursive: true, force: true });
    throw new Error(`up.sh failed (${up.code}): ${up.stderr}`);
  }
  const dir = runDirAt(runDir);
  const config = loadKitConfig(isolatedKitEnv(env));
  const parts = kitParts(config, dir);
  const pid = (part: string) => {
    const recorded = recordedPid(pidFile(dir, part));
    if (recorded === undefined) throw new Error(`no pid recorded for ${part}`);
    return recorded;
  };
  return {
    port,
    nodePorts,
    redisPort,
    runDir,
    env,
    url: localUrl(config),
    emitToken: () => readFileSync(join(runDir, 'emit-token'), 'utf8').trim(),
    pid,
    pids: () =>
      processTree(parts.filter((p) => existsSync(pidFile(dir, p.name))).map((p) => pid(p.name))),
    async stop() {
      const down = await runDoor('down', env);
      if (down.code !== 0) throw new Error(`down.sh failed: ${down.stderr}`);
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}
