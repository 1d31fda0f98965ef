// Keeps the kit's processes running: starts a part, restarts it when it exits (with a growing
// delay while it keeps dying), kills and restarts one that stops answering its liveness probe,
// and stops them all in the table's stop order. Each child runs in its own process group with its
// own log file and /dev/null as stdin, so it never depends on the terminal that started the kit.
// What a part is and how it starts: parts.ts; the start order: boot.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, readFileSync } from 'node:fs';
import { ROOT } from '../../services/node/config.ts';
import { KitError } from '../../services/node/errors.ts';
import { LivenessWatch } from './liveness.ts';
import { type Launch, type Part, stopGroups } from './parts.ts';
import { removePid, writePid } from './pid-files.ts';
import { shortPath } from './report.ts';
import type { RunDir } from './run-dir.ts';
import { openLog } from './safe-files.ts';
import type { RunAs } from './service-user.ts';
import { killGroup, stopProcess } from './stop-process.ts';
import { waitUntil } from './wait.ts';

interface Running {
  readonly part: Part;
  readonly launch: Launch;
  child: ChildProcess;
  startedAt: number;
  restarts: number;
  nextDelayMs: number;
  restartTimer?: NodeJS.Timeout;
  watch?: LivenessWatch;
}

export type Say = (line: string) => void;

const FIRST_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 10_000;
/** A part that ran this long before dying is restarted at once again; a faster death backs off. */
const STABLE_AFTER_MS = 30_000;
/** Restarts while starting after which waiting for readiness is pointless. */
const HOPELESS_RESTARTS = 3;

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** The last line of a log that says something (not a stack frame), for a one-line error. */
function lastLogLine(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => l.trim());
    return (
      lines
        .filter((l) => l !== '' && !l.startsWith('at '))
        .at(-1)
        ?.slice(0, 300) ?? 'no output'
    );
  } catch {
    return 'no log';
  }
}

export class Supervisor {
  private readonly running = new Map<string, Running>();
  private stopping = false;

  constructor(
    private readonly dir: RunDir,
    private readonly say: Say,
    /** Who the unprivileged parts run as when the kit runs as root. */
    private readonly runAs: RunAs | undefined,
  ) {}

  start(part: Part, launch: Launch): void {
    // A signal may arrive between two steps of the start: nothing new starts after stopAll began.
    if (this.stopping) return;
    const running: Running = this.running.get(part.name) ?? {
      part,
      launch,
      child: undefined as unknown as ChildProcess,
      startedAt: 0,
      restarts: 0,
      nextDelayMs: FIRST_RESTART_DELAY_MS,
    };
    const runAs = part.unprivileged ? this.runAs : undefined;
    const out = openLog(part.log);
    const child = spawn(launch.command, launch.args, {
      cwd: ROOT,
      env: launch.env ?? process.env,
      detached: true,
      stdio: ['ignore', out, out],
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    });
    closeSync(out);
    running.child = child;
    running.startedAt = Date.now();
    this.running.set(part.name, running);
    if (child.pid !== undefined) writePid(this.dir, part.name, child.pid, launch.command);
    child.once('error', (error) => {
      this.say(`${part.name}: could not start: ${error.message}`);
      // A spawn that failed (EAGAIN, EMFILE, ENOENT) never emits 'exit': retry like a crash.
      if (child.pid === undefined) this.onExit(running, child, null, null);
    });
    child.once('exit', (code, signal) => this.onExit(running, child, code, signal));
    running.watch?.stop();
    running.watch = this.watch(part, child);
  }

  /** Kills a part that stopped answering; its exit then takes the ordinary restart path. */
  private watch(part: Part, child: ChildProcess): LivenessWatch | undefined {
    if (part.liveness === undefined || child.pid === undefined) return undefined;
    const pid = child.pid;
    return new LivenessWatch({
      name: part.name,
      liveness: part.liveness,
      ready: () => part.ready(),
      refusedGraceMs: part.graceMs,
      readyTimeoutMs: part.readyTimeoutMs,
      onSilent: (why) => {
        if (this.stopping || exited(child)) return;
        this.say(`${why}; killing it (SIGKILL) and starting it again`);
        killGroup(pid);
      },
    });
  }

  private onExit(
    running: Running,
    child: ChildProcess,
    code: number | null,
    signal: string | null,
  ): void {
    if (running.child !== child) return;
    running.watch?.stop();
    removePid(this.dir, running.part.name);
    // What the part left in its process group goes too: nginx workers outlive a killed master,
    // keep serving and hold the port (reuseport lets a new master bind beside them).
    if (child.pid !== undefined) killGroup(child.pid);
    if (this.stopping) return;
    const uptime = Date.now() - running.startedAt;
    running.nextDelayMs = uptime > STABLE_AFTER_MS ? FIRST_RESTART_DELAY_MS : running.nextDelayMs;
    const delay = running.nextDelayMs;
    running.nextDelayMs = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
    running.restarts += 1;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    this.say(
      `${running.part.name} exited (${how}) after ${(uptime / 1000).toFixed(1)}s; ` +
        `restarting in ${(delay / 1000).toFixed(1)}s (restart #${running.restarts})`,
    );
    running.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      try {
        this.start(running.part, running.launch);
      } catch (error) {
        this.say(`${running.part.name} not restarted: ${(error as Error).message}`);
      }
    }, delay);
  }

  /** Waits until every part is ready; throws naming one that was not ready in time. */
  async waitReady(parts: readonly Part[], progress?: Say): Promise<void> {
    const pending = new Set(parts);
    const timeoutMs = Math.max(...parts.map((p) => p.readyTimeoutMs));
    const names = () => [...pending].map((p) => p.name).join(', ');
    let stuck: Part | undefined;
    try {
      await waitUntil(
        `${names()} (${parts.length} to be ready)`,
        async () => {
          for (const part of [...pending]) {
            if (!(await part.ready())) continue;
            this.running.get(part.name)?.watch?.markReady();
            pending.delete(part);
          }
          return pending.size === 0;
        },
        {
          timeoutMs,
          maxIntervalMs: 100,
          progress,
          // A part that keeps dying while starting will not get better by waiting.
          hopeless: () => {
            stuck = [...pending].find(
              (p) => (this.running.get(p.name)?.restarts ?? 0) >= HOPELESS_RESTARTS,
            );
            return stuck && 'keeps exiting while starting';
          },
        },
      );
    } catch {
      const part = stuck ?? ([...pending][0] as Part);
      const why = stuck ? 'keeps exiting while starting' : `not ready after ${timeoutMs / 1000}s`;
      throw new KitError(
        'KIT_ERR_START',
        `${part.name} ${why}: ${lastLogLine(part.log)} (see ${shortPath(part.log)})`,
      );
    }
  }

  /** Stops one part and waits for it to exit; SIGKILL to its group after its grace. */
  private async stopOne(running: Running): Promise<void> {
    clearTimeout(running.restartTimer);
    running.watch?.stop();
    const { child, part } = running;
    if (child.pid === undefined || exited(child)) return;
    const outcome = await stopProcess(child.pid, part.stopSignal, part.graceMs, () =>
      exited(child),
    );
    if (outcome === 'killed') {
      this.say(`${part.name} did not stop within ${part.graceMs / 1000}s; killed it`);
    }
    removePid(this.dir, part.name);
  }

  /** Every part, in the table's stop order (nginx, the nodes together, Redis). */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const running of this.running.values()) running.watch?.stop();
    for (const group of stopGroups([...this.running.values()].map((r) => r.part))) {
      await Promise.all(group.map((part) => this.stopOne(this.running.get(part.name) as Running)));
    }
  }
}
