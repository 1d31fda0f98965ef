// The kit finds its processes through pid files only, never through the ports, so it never
// signals a process that merely listens on one of them. A record names the very process: pid,
// kernel start time (a reused pid has another) and executable, so a pid file naming pid 1 or any
// unrelated process, planted or left over, never gets it signalled. Written and read here only.
import { existsSync, lstatSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { alive, executableOf, startTime } from './proc.ts';
import type { RunDir } from './run-dir.ts';
import { foreignControl, readNoFollow, writeAtomic } from './safe-files.ts';

export function pidFile(dir: RunDir, part: string): string {
  return join(dir.pids, `${part}.pid`);
}

/** The record of process `pid`: `pid starttime executable`. */
export function processRecord(pid: number, executable = executableOf(pid)): string {
  return `${pid} ${startTime(pid) ?? ''} ${executable ?? ''}\n`;
}

/** Records the process `pid`, which runs `command` (its real path, if /proc does not say). */
export function writePid(dir: RunDir, part: string, pid: number, command = process.execPath): void {
  writeAtomic(pidFile(dir, part), processRecord(pid, executableOf(pid) ?? realpathSync(command)));
}

export function removePid(dir: RunDir, part: string): void {
  rmSync(pidFile(dir, part), { force: true });
}

/** The pid a record names, as written, whether or not it still runs (for tests and the bench). */
export function recordedPid(file: string): number | undefined {
  const pid = Number((readNoFollow(file) ?? '').split(' ')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * The pid a record file (a pid file, up.lock) names, if that very process still runs: the file
 * is ours and nobody else could have written it, the pid is neither 1 nor this process, and its
 * start time and executable are the recorded ones.
 */
export function recordedLivePid(file: string): number | undefined {
  let stats: ReturnType<typeof lstatSync>;
  try {
    stats = lstatSync(file);
  } catch {
    return undefined;
  }
  if (!stats.isFile() || foreignControl(stats, [process.getuid?.() ?? 0]) !== undefined)
    return undefined;
  const [pidText, started, ...rest] = (readNoFollow(file) ?? '').trim().split(' ');
  const executable = rest.join(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !alive(pid)) return undefined;
  if (executable === '' || executable !== executableOf(pid)) return undefined;
  return startTime(pid) === started ? pid : undefined;
}

/** The pid recorded for a part, if that very process still runs (see recordedLivePid). */
export function livePid(dir: RunDir, part: string): number | undefined {
  return recordedLivePid(pidFile(dir, part));
}

/** Parts that have a pid file, running or not. */
export function recordedParts(dir: RunDir): string[] {
  if (!existsSync(dir.pids)) return [];
  return readdirSync(dir.pids)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => f.slice(0, -'.pid'.length));
}
