// Where the kit keeps its state: rendered configs, pid files, logs and Redis data, all under
// RUN_DIR. The scripts find the kit's processes through its pid files only, never through the
// ports, so they never signal a process that merely listens on one of them.
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

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

export function prepareRunDir(dir: RunDir): void {
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

/** A secret kept in RUN_DIR, if one was made. */
export function readSecret(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
}

/** A secret kept in RUN_DIR across restarts (generated on first use, readable by its owner only). */
export function secret(path: string): string {
  const known = readSecret(path);
  if (known !== undefined) return known;
  const value = randomBytes(24).toString('base64url');
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return value;
}

export function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export function pidFile(dir: RunDir, part: string): string {
  return join(dir.pids, `${part}.pid`);
}

export function writePid(dir: RunDir, part: string, pid: number): void {
  writeAtomic(pidFile(dir, part), `${pid} ${startTime(pid) ?? ''}\n`);
}

export function removePid(dir: RunDir, part: string): void {
  rmSync(pidFile(dir, part), { force: true });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kernel start time of a process (clock ticks since boot), or undefined if it is gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * The pid recorded for a part, if that very process still runs. A pid file holds the pid and
 * the process's start time, so a pid reused by an unrelated process is never mistaken for ours.
 */
export function livePid(dir: RunDir, part: string): number | undefined {
  const file = pidFile(dir, part);
  if (!existsSync(file)) return undefined;
  const [pidText, started] = readFileSync(file, 'utf8').trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  return startTime(pid) === started ? pid : undefined;
}

export function recordedParts(dir: RunDir): string[] {
  if (!existsSync(dir.pids)) return [];
  return readdirSync(dir.pids)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => f.slice(0, -'.pid'.length));
}

export type KitStatus = 'starting' | 'ready' | 'failed' | 'stopping' | 'stopped';

export interface KitState {
  status: KitStatus;
  supervisorPid: number;
  error?: string;
  updatedAt: string;
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

/** pid and all its descendants, from /proc. */
export function processTree(roots: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {}
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  for (const r of roots) walk(r);
  return out;
}
