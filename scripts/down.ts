// ./scripts/down.sh: stop everything up.sh started, gracefully, through its pid files. Only
// processes that still belong to this RUN_DIR are signalled. Safe to run any number of times.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from 'zx';
import { configOrFail } from './kit/report.ts';
import {
  alive,
  livePid,
  recordedLivePid,
  recordedParts,
  removePid,
  runDir,
} from './kit/run-dir.ts';
import { lockFile } from './kit/start-lock.ts';

const dir = runDir(configOrFail('down.sh').runDir);

async function waitExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

async function stop(
  part: string,
  signal: NodeJS.Signals,
  graceMs: number,
): Promise<string | undefined> {
  const pid = livePid(dir, part);
  if (pid === undefined) {
    removePid(dir, part);
    return undefined;
  }
  process.kill(pid, signal);
  if (!(await waitExit(pid, graceMs))) {
    // The part's whole process group (nginx's workers, say) goes with it.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      process.kill(pid, 'SIGKILL');
    }
    await waitExit(pid, 5000);
  }
  removePid(dir, part);
  return part;
}

const stopped: string[] = [];
// The supervisor stops its children in order (nginx, nodes, Redis) and does not restart them.
const supervisor = await stop('supervisor', 'SIGTERM', 40_000);
if (supervisor) stopped.push(supervisor);
// Whatever is left: a supervisor killed with SIGKILL leaves its children behind.
const signals: Record<string, NodeJS.Signals> = { nginx: 'SIGQUIT' };
const leftovers = recordedParts(dir).sort((a, b) => Number(b === 'nginx') - Number(a === 'nginx'));
for (const part of leftovers) {
  const name = await stop(part, signals[part] ?? 'SIGTERM', part === 'redis' ? 15_000 : 12_000);
  if (name) stopped.push(name);
}
// A lock left by an up.sh or supervisor that is gone; one held by a starting up.sh stays.
if (recordedLivePid(lockFile(dir)) === undefined) rmSync(lockFile(dir), { force: true });
// Every node is gone: a socket file left by one that was killed is stale.
for (const file of existsSync(dir.sockets) ? readdirSync(dir.sockets) : []) {
  if (file.endsWith('.sock')) rmSync(join(dir.sockets, file), { force: true });
}
process.stdout.write(
  stopped.length > 0 ? `stopped: ${stopped.join(', ')}\n` : 'nothing was running\n',
);
