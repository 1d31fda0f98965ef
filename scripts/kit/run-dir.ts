// Where the kit keeps its state: rendered configs, pid files, logs and Redis data, all under
// RUN_DIR, and who may write there. (Pid files: pid-files.ts.)
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { KitError } from '../../services/node/errors.ts';
import { createNew, foreignControl, readNoFollow, writeAtomic } from './safe-files.ts';
import { knownServiceUser, type RunAs } from './service-user.ts';

export interface RunDir {
  readonly root: string;
  readonly logs: string;
  readonly pids: string;
  readonly nginx: string;
  readonly redis: string;
  /** The nodes' Unix sockets, nginx's way in (NGINX_UPSTREAM). */
  readonly sockets: string;
  readonly stateFile: string;
}

export function runDir(root: string): RunDir {
  return {
    root,
    logs: join(root, 'logs'),
    pids: join(root, 'pids'),
    nginx: join(root, 'nginx'),
    redis: join(root, 'redis'),
    sockets: join(root, 'sockets'),
    stateFile: join(root, 'kit.json'),
  };
}

/**
 * Refuses a RUN_DIR (or a folder in it) that another user could change: whoever can write there
 * can plant pid files naming any process, or symbolic links where root writes logs and secrets.
 * `serviceUid` may own the folders the nodes and Redis write to (service-user.ts).
 */
export function checkRunDir(dir: RunDir, serviceUid?: number): void {
  const us = process.getuid?.() ?? 0;
  const owners = (path: string) =>
    serviceUid !== undefined && (path === dir.redis || path === dir.sockets)
      ? [us, serviceUid]
      : [us];
  for (const path of [dir.root, dir.logs, dir.pids, dir.nginx, dir.redis, dir.sockets]) {
    if (!existsSync(path)) continue;
    // RUN_DIR itself may be a link to where it really is; the folders in it may not.
    const stats = path === dir.root ? statSync(path) : lstatSync(path);
    const why = stats.isDirectory() ? foreignControl(stats, owners(path)) : 'it is not a folder';
    if (why !== undefined) {
      const shown = path === dir.root ? '' : ` (${path})`;
      throw new KitError(
        'KIT_ERR_UNSAFE_PATH',
        `RUN_DIR=${dir.root}${shown} is not safe to use: ${why}; use a folder only you can write to`,
      );
    }
  }
}

export function prepareRunDir(dir: RunDir): void {
  checkRunDir(dir, knownServiceUser()?.uid);
  // RUN_DIR (and any folder above it made here) may be passed through, not listed, by others.
  mkdirSync(dir.root, { recursive: true, mode: 0o751 });
  for (const path of [dir.logs, dir.pids, join(dir.nginx, 'tmp'), dir.redis]) {
    mkdirSync(path, { recursive: true, mode: 0o750 });
  }
  // nginx's workers (user nobody when the kit runs as root) connect to the nodes' sockets: they
  // may pass through RUN_DIR and its sockets folder, but not list them or read anything else.
  // (An existing RUN_DIR, made by an older kit or mkdtemp, gets the same.)
  mkdirSync(dir.sockets, { recursive: true, mode: 0o711 });
  // Only root's nginx hands its workers to another user; otherwise modes stay as they are.
  if (process.getuid?.() === 0) {
    for (const path of [dir.root, dir.sockets]) chmodSync(path, statSync(path).mode | 0o001);
  }
}

/**
 * Gives the service user RUN_DIR/redis and RUN_DIR/sockets and what is in them. Root walks them
 * only while they are root's again: inside a folder the service user owns, it could swap an
 * entry for a link between root's look and root's chown. Entries already the user's are left as
 * they are (and not walked into).
 */
export function handOverWritableDirs(dir: RunDir, user: RunAs): void {
  const own = process.getuid?.() ?? 0;
  const giveContents = (path: string) => {
    for (const entry of readdirSync(path)) {
      const inside = join(path, entry);
      const stats = lstatSync(inside);
      if (stats.uid === user.uid) continue;
      if (stats.isDirectory()) giveContents(inside);
      lchownSync(inside, user.uid, user.gid);
    }
  };
  for (const top of [dir.redis, dir.sockets]) {
    lchownSync(top, own, own);
    giveContents(top);
    lchownSync(top, user.uid, user.gid);
  }
}

/** A secret kept in RUN_DIR, if one was made (never read through a symbolic link). */
export function readSecret(path: string): string | undefined {
  return readNoFollow(path)?.trim();
}

/** A secret kept in RUN_DIR across restarts (generated on first use, readable by its owner only). */
export function secret(path: string): string {
  const known = readSecret(path);
  if (known !== undefined) return known;
  const value = randomBytes(24).toString('base64url');
  createNew(path, `${value}\n`);
  return value;
}

export type KitStatus = 'starting' | 'ready' | 'failed' | 'stopping' | 'stopped';

export interface KitState {
  status: KitStatus;
  supervisorPid: number;
  error?: string;
  /** Who Redis and the nodes run as, and why (service-user.ts). */
  serviceUser?: string;
  updatedAt: string;
}

/** The role up.sh last started the kit in this RUN_DIR with (written by up.sh). */
export function recordedRole(dir: RunDir): string | undefined {
  try {
    return readFileSync(join(dir.root, 'role'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function recordRole(dir: RunDir, role: string): void {
  writeAtomic(join(dir.root, 'role'), `${role}\n`);
}

export function readState(dir: RunDir): KitState | undefined {
  try {
    return JSON.parse(readFileSync(dir.stateFile, 'utf8')) as KitState;
  } catch {
    return undefined;
  }
}

export function writeState(dir: RunDir, state: Omit<KitState, 'updatedAt'>): void {
  writeAtomic(
    dir.stateFile,
    `${JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2)}\n`,
  );
}
