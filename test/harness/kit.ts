// Whole kits for the tests, through the one launcher the bench uses too
// (scripts/kit/launch-kit.ts), and what tests look at around them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { waitUntil } from '../../scripts/kit/wait.ts';

const run = promisify(execFile);

export { isolatedKitEnv } from '../../scripts/kit/isolated-env.ts';
export type { DoorResult, LaunchedKit as Kit } from '../../scripts/kit/launch-kit.ts';
export { launchKit, runDoor } from '../../scripts/kit/launch-kit.ts';
export { freePorts, portFree } from '../../scripts/kit/ports.ts';
export { processTree } from '../../scripts/kit/proc.ts';

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

/** waitUntil (scripts/kit/wait.ts) with a test's arguments: a rejection names `what`. */
export function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  return waitUntil(what, probe, { timeoutMs, intervalMs, maxIntervalMs: intervalMs });
}
