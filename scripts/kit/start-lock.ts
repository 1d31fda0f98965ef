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
  // Twice at most: the second try follows the removal of a stale lock.
  for (let attempt = 0; ; attempt++) {
    try {
      createNew(file, processRecord(process.pid), 0o644);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
    }
    const holder = recordedLivePid(file);
    if (holder !== undefined) {
      throw new KitError(
        'KIT_ERR_RUNNING',
        `the kit is already running (or starting) from RUN_DIR=${dir.root} (pid ${holder}); stop it with ./scripts/down.sh`,
      );
    }
    // Stale: its process is gone (a supervisor killed with SIGKILL, a crashed up.sh).
    rmSync(file, { force: true });
  }
}

/** up.sh --detach: the background supervisor owns the kit from now on. */
export function handOverStartLock(dir: RunDir, pid: number): void {
  writeAtomic(lockFile(dir), processRecord(pid));
}

/** Drops the lock if this process holds it. */
export function releaseStartLock(dir: RunDir): void {
  if (recordedPid(lockFile(dir)) === process.pid) rmSync(lockFile(dir), { force: true });
}
