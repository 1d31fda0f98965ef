// Liveness of a running part. A process stopped with SIGSTOP or spinning in an endless loop never
// exits, so the restart-on-exit path never sees it, while nginx keeps sending it a share of new
// clients. Once the part has been ready, it is probed every second while it answers; one silent
// too long is killed (SIGKILL works on a stopped process too) and the supervisor starts it again.
//
// Silent, not slow. A node busy with a burst (every client of a restarted kit reconnecting at
// once) answers late, and killing it for that throws its clients onto the others, which are as
// busy: so a probe waits for its answer until the part has been silent for the whole limit.

/** A part's liveness check: undefined when it answers within timeoutMs, else why not (`timeout`, `refused`, …). */
export interface Liveness {
  /** What is probed, for the log line (`/healthz`). */
  readonly what: string;
  check(timeoutMs: number): Promise<string | undefined>;
}

/** One probe per second (start to start) while the part answers. */
export const PROBE_INTERVAL_MS = 1000;
/**
 * Six silent seconds: far beyond a healthy node's answer (a few ms), a GC pause (tens of ms) or a
 * node busy with a burst of connections (hundreds of ms, up to seconds); a node that answers
 * nothing for that long has had its event loop blocked throughout, and its clients starve too.
 * Short enough that the hung node is replaced within 15 s even on a loaded machine.
 */
export const SILENCE_LIMIT_MS = 6_000;

export interface WatchOptions {
  readonly name: string;
  readonly liveness: Liveness;
  /** Ready to serve: probing starts only once this said yes; a starting part is left alone. */
  readonly ready: () => Promise<boolean>;
  /**
   * How long a part refusing connections is given: it closed its listener, which a draining node
   * does (restart.sh's SIGTERM), and it exits by itself within its stop grace.
   */
  readonly refusedGraceMs: number;
  /** A part not ready this long after its start is as good as silent (it hung while starting). */
  readonly readyTimeoutMs: number;
  readonly onSilent: (why: string) => void;
  /** How long a part may stay silent (SILENCE_LIMIT_MS unless told; the tests shorten it). */
  readonly silenceLimitMs?: number;
}

/** Watches one process of a part; `stop()` when it exits or the kit stops. */
export class LivenessWatch {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private hasBeenReady = false;
  private silentSince?: number;
  private readonly startedAt = Date.now();

  private readonly silenceLimitMs: number;

  constructor(private readonly options: WatchOptions) {
    this.silenceLimitMs = options.silenceLimitMs ?? SILENCE_LIMIT_MS;
    this.schedule(PROBE_INTERVAL_MS);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** The supervisor saw the part ready: from now on it is held to answering. (Its own readiness
   * probe may come too late: a part stopped right after it was ready would never count.) */
  markReady(): void {
    this.hasBeenReady = true;
  }

  private schedule(delayMs: number): void {
    if (!this.stopped) this.timer = setTimeout(() => void this.probe(), Math.max(0, delayMs));
  }

  private async probe(): Promise<void> {
    const began = Date.now();
    if (!this.hasBeenReady) {
      if (await this.options.ready()) this.markReady();
      else if (began - this.startedAt > this.options.readyTimeoutMs) {
        this.stop();
        this.options.onSilent(
          `${this.options.name} was not ready ${this.options.readyTimeoutMs / 1000}s after its start`,
        );
        return;
      }
      this.schedule(PROBE_INTERVAL_MS - (Date.now() - began));
      return;
    }
    // A probe may take what is left of the limit: an answer however late proves the part alive.
    const left = (this.silentSince ?? began) + this.silenceLimitMs - began;
    const why = await this.options.liveness.check(Math.max(PROBE_INTERVAL_MS, left));
    if (this.stopped) return;
    if (why === undefined) {
      this.silentSince = undefined;
    } else if (this.silentEnough(why, began)) {
      this.stop();
      const seconds = Math.round((Date.now() - (this.silentSince ?? began)) / 1000);
      this.options.onSilent(
        `${this.options.name} did not answer ${this.options.liveness.what} for ${seconds}s (${why})`,
      );
      return;
    }
    this.schedule(PROBE_INTERVAL_MS - (Date.now() - began));
  }

  private silentEnough(why: string, probeBegan: number): boolean {
    this.silentSince ??= probeBegan;
    const silentMs = Date.now() - this.silentSince;
    if (why === 'refused') return silentMs >= this.options.refusedGraceMs;
    return silentMs >= this.silenceLimitMs;
  }
}
