// The one way the kit waits for something: poll with a growing interval (zx's retry and
// expBackoff) until it holds, a deadline passes, or the caller sees it never will.
import { expBackoff, retry } from 'zx';

/** A wait that ended without what it waited for. */
export class WaitTimeout extends Error {}

export interface WaitOptions {
  readonly timeoutMs: number;
  /** First interval between probes; it doubles up to maxIntervalMs. */
  readonly intervalMs?: number;
  readonly maxIntervalMs?: number;
  /** Told `waiting for <what>` once, before the first probe. */
  readonly progress?: (line: string) => void;
  /** Why waiting longer is pointless (a part that keeps exiting), or undefined. */
  readonly hopeless?: () => string | undefined;
}

class NotYet extends Error {}

/** Resolves with the first value `probe` gives that is neither undefined nor false. */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions,
): Promise<T> {
  const { timeoutMs, intervalMs = 50, maxIntervalMs = 500, progress, hopeless } = options;
  const deadline = Date.now() + timeoutMs;
  progress?.(`waiting for ${what}`);
  const outcome = await retry(
    Number.POSITIVE_INFINITY,
    expBackoff(maxIntervalMs, intervalMs),
    async (): Promise<{ value: T } | { failed: string }> => {
      // A probe that throws (a refused connection, say) is tried again too, until the deadline.
      let value: T | undefined | false;
      let error: Error | undefined;
      try {
        value = await probe();
      } catch (thrown) {
        error = thrown as Error;
      }
      if (value !== undefined && value !== false) return { value };
      const why = hopeless?.();
      if (why !== undefined) return { failed: why };
      if (Date.now() >= deadline)
        return { failed: `not after ${timeoutMs / 1000}s${error ? ` (${error.message})` : ''}` };
      throw new NotYet();
    },
  );
  if ('failed' in outcome) throw new WaitTimeout(`${what}: ${outcome.failed}`);
  return outcome.value;
}
