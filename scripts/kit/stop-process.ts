// The one way the kit stops a process: its stop signal, then, after its grace, SIGKILL to its
// whole process group (nginx's workers, say, which outlive a killed master).
import { alive } from './proc.ts';
import { waitUntil } from './wait.ts';

/** After SIGKILL, how long the kernel may take to end the process. */
const KILL_WAIT_MS = 5_000;

export type StopOutcome = 'stopped' | 'killed' | 'gone';

/** SIGKILL to the process group `pid` leads, or to the process alone if it leads none. */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

/**
 * Stops `pid` and waits for it to exit. `exited` is the parent's own view (a child's 'exit'
 * event) where there is one; otherwise /proc's (alive: a zombie has exited).
 */
export async function stopProcess(
  pid: number,
  signal: NodeJS.Signals,
  graceMs: number,
  exited: () => boolean = () => !alive(pid),
): Promise<StopOutcome> {
  try {
    process.kill(pid, signal);
  } catch {
    return 'gone';
  }
  try {
    await waitUntil(`pid ${pid} to exit`, exited, { timeoutMs: graceMs });
    return 'stopped';
  } catch {
    killGroup(pid);
    await waitUntil(`pid ${pid} to die`, exited, { timeoutMs: KILL_WAIT_MS }).catch(() => {});
    return 'killed';
  }
}
