// "Hosts" for the multi-host tests: network namespaces joined by a Linux bridge in the root
// namespace. Addresses come only from 198.18.0.0/15, the range RFC 2544 sets aside for such
// testing, and no namespace gets a default route, so nothing a test sends can leave the bridge.
//
// Everything made is named kmh<pid>… (the test process's pid), and removed by cleanup(); by the
// exit and signal handlers below when the run is cut short; and, when the run was SIGKILLed and
// could not, by the next run, which removes whatever names a dead pid.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { alive } from '../../../scripts/kit/proc.ts';
import { IPROUTE2 } from '../../../scripts/kit/system-packages.ts';

const IP = IPROUTE2.binary;
const PREFIX = 'kmh';
/** The pid of the run that made a name, for names this harness makes. */
const MADE_BY = new RegExp(`^${PREFIX}(\\d+)\\D`);
/** Interface names are at most 15 bytes (IFNAMSIZ - 1). */
const IFNAME_MAX = 15;
/** The first host's last octet: .1 is the bridge, the hosts are .11, .12, … */
const FIRST_HOST = 11;

export type Capability = { ok: true } | { ok: false; why: string };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A process started inside a host. */
export interface InsideProcess {
  readonly pid: number;
  /** The file its stdout and stderr go to. */
  readonly log: string;
  readonly child: ChildProcess;
  /** Resolves when the process itself exits (daemons it left behind may live on). */
  readonly exited: Promise<Exit>;
  kill(signal?: NodeJS.Signals): void;
}

export interface ExecOptions {
  /** Where stdout and stderr go (appended); default a new file in the host's folder. */
  log?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult extends Exit {
  /** stdout and stderr, interleaved as written. */
  output: string;
}

export interface Host {
  readonly index: number;
  /** The namespace's name (`ip netns exec <name>`). */
  readonly name: string;
  readonly address: string;
  /** A folder of this host's own, for logs and data; removed by cleanup(). */
  readonly dir: string;
  /**
   * Starts `command` inside the host, in a process group of its own, stdin /dev/null and
   * stdout/stderr to a log file, so that it may leave daemons behind and nothing waits on them.
   * The process itself (not what it leaves behind) keeps the test's event loop alive until it
   * exits; cleanup() kills whatever is still inside.
   */
  exec(command: string, args: readonly string[], options?: ExecOptions): InsideProcess;
  /** Runs `command` inside the host to its end; rejects after timeoutMs (and kills it). */
  run(
    command: string,
    args: readonly string[],
    options?: ExecOptions & { timeoutMs?: number },
  ): Promise<RunResult>;
  /** Why a TCP connection from this host to address:port failed, or undefined when it opened. */
  tcpFailure(address: string, port: number, timeoutMs?: number): Promise<string | undefined>;
  /** Pulls the host's cable: its bridge port goes down, packets to and from it are lost. */
  linkDown(): void;
  linkUp(): void;
  /** Every process inside the namespace. */
  pids(): number[];
  /** SIGKILLs every process inside the namespace and waits until none is left. */
  killAll(): Promise<void>;
}

export interface Hosts {
  readonly hosts: readonly Host[];
  /** The root namespace's address on the bridge: the test process reaches the hosts from it. */
  readonly bridgeAddress: string;
  /** e.g. 198.18.7.0/24 */
  readonly subnet: string;
  /** The folder holding every host's folder. */
  readonly dir: string;
  /** Kills every process inside the hosts, removes the namespaces, links and folders. Idempotent. */
  cleanup(): void;
}

interface Made {
  readonly namespaces: string[];
  readonly links: string[];
  readonly dirs: string[];
}

function ip(...args: string[]): string {
  return execFileSync(IP, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 10_000,
  });
}

function ipMaybe(...args: string[]): boolean {
  try {
    ip(...args);
    return true;
  } catch {
    return false;
  }
}

function stderrOf(error: unknown): string {
  const stderr = (error as { stderr?: string }).stderr?.trim();
  return stderr || (error as Error).message;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pauseSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function namespaceNames(): string[] {
  const text = ip('-j', 'netns', 'list').trim();
  return text === '' ? [] : (JSON.parse(text) as { name: string }[]).map((n) => n.name);
}

function linkNames(): string[] {
  return (JSON.parse(ip('-j', 'link', 'show')) as { ifname: string }[]).map((l) => l.ifname);
}

function pidsInside(namespace: string): number[] {
  try {
    return ip('netns', 'pids', namespace).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function signalAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/** A namespace is deleted only when its last process is gone; until then its links live on. */
function killInsideSync(namespace: string): void {
  for (let round = 0; round < 100; round++) {
    const pids = pidsInside(namespace);
    if (pids.length === 0) return;
    signalAll(pids);
    pauseSync(50);
  }
}

function removeSync(made: Made): void {
  for (const namespace of made.namespaces) killInsideSync(namespace);
  // Deleting one end of a veth pair deletes the other, the one inside a namespace too.
  for (const link of made.links) ipMaybe('link', 'delete', link);
  for (const namespace of made.namespaces) ipMaybe('netns', 'delete', namespace);
  for (const dir of made.dirs) rmSync(dir, { recursive: true, force: true });
}

/** Whether this machine can make the hosts: Linux, `ip`, and the rights to make namespaces,
 * veth pairs and a bridge (root, or CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns exec`). */
export function canMakeNamespaces(): Capability {
  if (process.platform !== 'linux') {
    return {
      ok: false,
      why: `network namespaces are a Linux feature; this is ${process.platform}`,
    };
  }
  if (!existsSync(IP)) {
    return { ok: false, why: `${IP} is missing (Debian package ${IPROUTE2.apt})` };
  }
  const base = `${PREFIX}${process.pid}z`;
  const probe: Made = { namespaces: [`${base}ns`], links: [`${base}br`, `${base}v`], dirs: [] };
  const steps: [string, string[]][] = [
    ['ip netns add', ['netns', 'add', `${base}ns`]],
    ['ip netns exec', ['netns', 'exec', `${base}ns`, IP, 'link', 'set', 'lo', 'up']],
    ['ip link add type bridge', ['link', 'add', 'name', `${base}br`, 'type', 'bridge']],
    [
      'ip link add type veth',
      ['link', 'add', `${base}v`, 'type', 'veth', 'peer', 'name', `${base}p`, 'netns', `${base}ns`],
    ],
  ];
  try {
    for (const [what, args] of steps) {
      try {
        ip(...args);
      } catch (error) {
        const who = process.getuid?.() === 0 ? 'root' : `uid ${process.getuid?.()}`;
        return { ok: false, why: `\`${what}\` failed as ${who}: ${stderrOf(error)}` };
      }
    }
    return { ok: true };
  } finally {
    removeSync(probe);
  }
}

/** The loud notice a multi-host suite prints instead of registering tests it cannot run. */
export function sayNotTested(suite: string, why: string, untested: readonly string[]): void {
  const lines = [
    `NOT TESTED: ${suite}`,
    'These tests run "hosts" as network namespaces, and this machine cannot make them:',
    `    ${why}`,
    'So the following is NOT tested on this run:',
    ...untested.map((u) => `  - ${u}`),
    'Run the tests as root (or with CAP_NET_ADMIN and CAP_SYS_ADMIN), with iproute2 installed.',
  ];
  const rule = '!'.repeat(Math.max(...lines.map((l) => l.length)));
  process.stderr.write(`\n${rule}\n${lines.join('\n')}\n${rule}\n\n`);
}

/** Namespaces, links and temp folders of this harness still present, by default this run's. */
export function leftovers(pid = process.pid): string[] {
  const ofRun = (name: string) => MADE_BY.exec(name)?.[1] === String(pid);
  return [
    ...namespaceNames()
      .filter(ofRun)
      .map((n) => `namespace ${n}`),
    ...linkNames()
      .filter(ofRun)
      .map((l) => `link ${l}`),
    ...readdirSync(tmpdir())
      .filter(ofRun)
      .map((d) => `folder ${join(tmpdir(), d)}`),
  ];
}

/** Removes what earlier runs left when they died without cleaning up (SIGKILL, power loss). */
function removeLeftoversOfDeadRuns(): void {
  const dead = (name: string) => {
    const pid = Number(MADE_BY.exec(name)?.[1]);
    return pid > 0 && pid !== process.pid && !alive(pid);
  };
  removeSync({
    namespaces: namespaceNames().filter(dead),
    links: linkNames().filter(dead),
    dirs: readdirSync(tmpdir())
      .filter(dead)
      .map((d) => join(tmpdir(), d)),
  });
}

const live = new Set<Made>();
let handlersInstalled = false;

function cleanupAllSync(): void {
  for (const made of live) {
    removeSync(made);
    live.delete(made);
  }
}

function onSignal(signal: NodeJS.Signals): void {
  cleanupAllSync();
  // With nobody else listening, die of the signal as if no handler had been there.
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
}

/** Routed IPv4 prefixes on this machine, as [network, length]. */
function routedPrefixes(): [number, number][] {
  const toNumber = (a: string) => a.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  const prefixes: [number, number][] = [];
  for (const line of ip('-4', '-o', 'route', 'show', 'table', 'all').split('\n')) {
    const target = line.split(' ').find((w) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(w));
    if (target === undefined) continue;
    const [address, length = '32'] = target.split('/') as [string, string?];
    prefixes.push([toNumber(address), Number(length)]);
  }
  return prefixes;
}

/** A /24 of 198.18.0.0/15 that no route or address on this machine lies in. */
function freeSubnet(set: number): string {
  const routes = routedPrefixes();
  const base = 198 * 2 ** 24 + 18 * 2 ** 16;
  const start = (process.pid * 31 + set) % 512;
  for (let i = 0; i < 512; i++) {
    const network = base + ((start + i) % 512) * 256;
    const used = routes.some(
      ([n, length]) => length >= 24 && Math.floor(n / 256) === Math.floor(network / 256),
    );
    if (!used) return [network >>> 24, (network >>> 16) & 255, (network >>> 8) & 255].join('.');
  }
  throw new Error('no free /24 left in 198.18.0.0/15');
}

let sets = 0;

/** `count` hosts on one bridge: host i is 198.18.<k>.<11+i>, the root namespace 198.18.<k>.1. */
export function makeHosts(count: number): Hosts {
  if (count < 1 || count > 200) throw new RangeError(`makeHosts(${count}): 1 to 200 hosts`);
  const set = sets++;
  if (set === 0) removeLeftoversOfDeadRuns();
  // kmh<pid><set letter>…: one run may make several sets.
  const base = `${PREFIX}${process.pid}${String.fromCharCode(97 + (set % 26))}`;
  const bridge = `${base}br`;
  if (`${base}v${count - 1}`.length > IFNAME_MAX) throw new Error(`${base}…: names too long`);
  const dir = mkdtempSync(join(tmpdir(), `${base}-`));
  const made: Made = { namespaces: [], links: [], dirs: [dir] };
  installHandlers();
  live.add(made);
  const subnet = freeSubnet(set);
  const bridgeAddress = `${subnet}.1`;

  const cleanup = () => {
    removeSync(made);
    live.delete(made);
  };
  try {
    made.links.push(bridge);
    ip('link', 'add', 'name', bridge, 'type', 'bridge');
    // No IPv6 link-local addresses: nothing but the test's own IPv4 traffic on the bridge.
    ip('link', 'set', bridge, 'addrgenmode', 'none');
    ip('addr', 'add', `${bridgeAddress}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    const hosts = Array.from({ length: count }, (_, index) =>
      makeHost(index, `${base}h${index}`, `${base}v${index}`, `${subnet}.${FIRST_HOST + index}`),
    );
    return { hosts, bridgeAddress, subnet: `${subnet}.0/24`, dir, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }

  function makeHost(index: number, name: string, veth: string, address: string): Host {
    made.namespaces.push(name);
    ip('netns', 'add', name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    made.links.push(veth);
    ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${base}p${index}`, 'netns', name);
    ip('-n', name, 'link', 'set', `${base}p${index}`, 'name', 'eth0');
    ip('link', 'set', veth, 'addrgenmode', 'none');
    ip('-n', name, 'link', 'set', 'eth0', 'addrgenmode', 'none');
    ip('link', 'set', veth, 'master', bridge);
    ip('-n', name, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('link', 'set', veth, 'up');
    ip('-n', name, 'link', 'set', 'eth0', 'up');
    const hostDir = join(dir, `h${index}`);
    mkdirSync(hostDir);
    let logs = 0;

    const exec = (command: string, args: readonly string[], options: ExecOptions = {}) => {
      const log = options.log ?? join(hostDir, `${basename(command)}-${++logs}.log`);
      const fd = openSync(log, 'a');
      let child: ChildProcess;
      try {
        // `ip netns exec` execs the command: the child's pid is the command's own.
        child = spawn(IP, ['netns', 'exec', name, command, ...args], {
          stdio: ['ignore', fd, fd],
          detached: true,
          cwd: options.cwd ?? hostDir,
          env: options.env ?? process.env,
        });
      } finally {
        closeSync(fd);
      }
      const pid = child.pid;
      if (pid === undefined) throw new Error(`${name}: could not start ${command}`);
      const exited = new Promise<Exit>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
        child.once('error', () => resolve({ code: null, signal: null }));
      });
      const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      };
      return { pid, log, child, exited, kill };
    };

    const run: Host['run'] = async (command, args, options = {}) => {
      const { timeoutMs = 30_000, ...rest } = options;
      const log = rest.log ?? join(hostDir, `${basename(command)}-${++logs}.out`);
      const started = exec(command, args, { ...rest, log });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          started.kill('SIGKILL');
          reject(
            new Error(`${name}: ${command} ${args.join(' ')}: not done after ${timeoutMs} ms`),
          );
        }, timeoutMs);
      });
      try {
        const exit = await Promise.race([started.exited, timedOut]);
        return { ...exit, output: readFileSync(log, 'utf8') };
      } finally {
        clearTimeout(timer);
        if (rest.log === undefined) rmSync(log, { force: true });
      }
    };

    const pids = () => pidsInside(name);

    return {
      index,
      name,
      address,
      dir: hostDir,
      exec,
      run,
      async tcpFailure(to, port, timeoutMs = 2000) {
        const { output } = await run(process.execPath, ['-e', TCP_PROBE, to, String(port)], {
          timeoutMs: timeoutMs + 10_000,
          env: { ...process.env, PROBE_TIMEOUT_MS: String(timeoutMs) },
        });
        const answer = output.trim();
        return answer === 'open' ? undefined : answer || 'no answer from the probe';
      },
      linkDown: () => ip('link', 'set', veth, 'down'),
      linkUp: () => ip('link', 'set', veth, 'up'),
      pids,
      async killAll() {
        for (let round = 0; round < 200; round++) {
          const inside = pids();
          if (inside.length === 0) return;
          signalAll(inside);
          await pause(50);
        }
        throw new Error(`${name}: processes survive SIGKILL: ${pids().join(' ')}`);
      },
    };
  }
}

/** Opens one TCP connection and prints `open`, or why not (ECONNREFUSED, EHOSTUNREACH, timeout). */
const TCP_PROBE = `
const socket = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
socket.setTimeout(Number(process.env.PROBE_TIMEOUT_MS));
socket.on('connect', () => { console.log('open'); socket.destroy(); });
socket.on('timeout', () => { console.log('timeout'); socket.destroy(); });
socket.on('error', (e) => console.log(e.code || e.message));
`;
