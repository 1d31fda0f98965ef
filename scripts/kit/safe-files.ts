// Files the kit writes as root into RUN_DIR, written so that nobody else can redirect them: never
// through a symbolic link (a link planted at a log's path would have root append to any file),
// secrets only into files made new, and RUN_DIR refused when another user could plant things in it.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  writeSync,
} from 'node:fs';
import { KitError } from '../../services/node/errors.ts';

const { O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

function refuseLink<T>(path: string, what: string, open: () => T): T {
  try {
    return open();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // O_NOFOLLOW says ELOOP; O_EXCL says EEXIST about a link as about anything else.
    if (code === 'ELOOP' || (code === 'EEXIST' && isLink(path))) {
      throw new KitError(
        'KIT_ERR_UNSAFE_PATH',
        `${path} is a symbolic link; the kit does not write its ${what} through one (remove it)`,
      );
    }
    throw error;
  }
}

/** Whether `path` is a symbolic link; false when it is gone (removed since an EEXIST, say). */
function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A log opened for appending (the descriptor a part writes to), never through a symbolic link. */
export function openLog(path: string): number {
  return refuseLink(path, 'logs', () =>
    openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o640),
  );
}

/** `content` in a new file of its own beside `path` (never through a link): its name. */
function draftOf(path: string, content: string, mode: number): string {
  const draft = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.new`;
  const fd = openSync(draft, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    writeSync(fd, content);
  } catch (error) {
    rmSync(draft, { force: true });
    throw error;
  } finally {
    closeSync(fd);
  }
  return draft;
}

/**
 * Writes a file that must not exist yet (no file, no link); `mode` 0600 keeps it private. It
 * appears whole or not at all: written as a draft, then linked into place (link(2) fails when the
 * name is taken, as O_EXCL does). Created empty and then written, it could be read empty in
 * between: two up.sh at once took an up.lock read so for one left by a process gone, removed it,
 * and both started (3 rounds in 150 of six processes racing, before this).
 */
export function createNew(path: string, content: string, mode = 0o600): void {
  const draft = draftOf(path, content, mode);
  try {
    refuseLink(path, 'files', () => linkSync(draft, path));
  } finally {
    rmSync(draft, { force: true });
  }
}

/** The content of a file, or undefined when it is missing or a symbolic link. */
export function readNoFollow(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Why another user could change what `stats` describes, or undefined when only `owners` can. */
export function foreignControl(stats: Stats, owners: readonly number[]): string | undefined {
  if (!owners.includes(stats.uid)) return `it is owned by another user (uid ${stats.uid})`;
  if ((stats.mode & 0o022) !== 0) {
    const mode = (stats.mode & 0o7777).toString(8).padStart(4, '0');
    return `it is writable by ${stats.mode & 0o002 ? 'every user' : 'its group'} (mode ${mode})`;
  }
  return undefined;
}

/** Replaces `path` whole; the draft is made new, so a link planted there is not followed. */
export function writeAtomic(path: string, content: string, mode = 0o644): void {
  const draft = draftOf(path, content, mode);
  try {
    renameSync(draft, path);
  } catch (error) {
    rmSync(draft, { force: true });
    throw error;
  }
}
