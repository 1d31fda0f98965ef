// One kit per RUN_DIR. Two up.sh started at once would both find no supervisor, start two sets of
// processes and leave one set with no pid files. RUN_DIR/up.lock, made with O_EXCL before anything
// starts, names the process that owns the kit (up.sh, then the supervisor it hands over to) the
// way a pid file does; one left by a process that is gone is taken over.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { KitError } from '../../services/node/errors.ts';
import { processRecord, recordedLivePid, recordedPid } from './pid-files.ts';
import type { RunDir } from './run-dir.ts';
import { createNew, writeAtomic } from './safe-files.ts';

export function lockFile(dir: RunDir): string {
  return join(dir.root, 'up.lock');
}

/** Takes the lock for this process, or throws naming the process that holds it. */
export function takeStartLock(dir: RunDir): void {
  const file = lockFile(dir);
  if (created(file)) return;
  refuseIfHeld(dir, file);
  // Stale: its process is gone (a supervisor killed with SIGKILL, a crashed up.sh). Starts that
  // all find it stale take it over one at a time, through a second lock: each used to remove it
  // and make its own, and one slower to remove it removed the lock another had just made (two
  // kits). The first to get the turn replaces the stale lock in one rename, so the lock never
  // goes missing; the others, getting the turn after it, find its lock live.
  const turn = `${file}.takeover`;
  if (!created(turn)) {
    refuseIfHeld(dir, turn);
    // Left by a start that died in the few system calls of its turn. (Two starts racing over
    // such a one could still both pass: a process dying there and a race, at once.)
    rmSync(turn, { force: true });
    if (!created(turn)) {
      refuseIfHeld(dir, turn);
      throw new KitError(
        'KIT_ERR_RUNNING',
        `another start is taking over RUN_DIR=${dir.root}; try again once it has started or failed`,
      );
    }
  }
  try {
    refuseIfHeld(dir, file);
    writeAtomic(file, processRecord(process.pid));
  } finally {
    rmSync(turn, { force: true });
  }
}

/** Makes `path` naming this process, unless it exists. */
function created(path: string): boolean {
  try {
    createNew(path, processRecord(process.pid), 0o644);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  }
}

/** Throws, naming it, when the process a lock file names still runs. */
function refuseIfHeld(dir: RunDir, path: string): void {
  const holder = recordedLivePid(path);
  if (holder === undefined) return;
  throw new KitError(
    'KIT_ERR_RUNNING',
    `the kit is already running (or starting) from RUN_DIR=${dir.root} (pid ${holder}); stop it with ./scripts/down.sh`,
  );
}

/** up.sh --detach: the background supervisor owns the kit from now on. */
export function handOverStartLock(dir: RunDir, pid: number): void {
  writeAtomic(lockFile(dir), processRecord(pid));
}

/** Drops the lock if this process holds it. */
export function releaseStartLock(dir: RunDir): void {
  if (recordedPid(lockFile(dir)) === process.pid) rmSync(lockFile(dir), { force: true });
}
