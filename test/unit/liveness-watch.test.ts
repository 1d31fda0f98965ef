// The supervisor's liveness watch, with probes the test controls: a part is held to answering
// from the moment the supervisor saw it ready, and one that never becomes ready after a start is
// given up on like a silent one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Liveness,
  LivenessWatch,
  PROBE_INTERVAL_MS,
  SILENCE_LIMIT_MS,
} from '../../scripts/kit/liveness.ts';

function watch(
  ready: () => boolean,
  readyTimeoutMs: number,
  check: Liveness['check'] = async () => 'timeout',
) {
  let why: string | undefined;
  const silent = new Promise<string>((resolve) => {
    const w = new LivenessWatch({
      name: 'node-1',
      liveness: { what: '/healthz', check },
      ready: async () => ready(),
      refusedGraceMs: 12_000,
      readyTimeoutMs,
      onSilent: (reason) => {
        why = reason;
        resolve(reason);
      },
    });
    watched.push(w);
  });
  return { silent, why: () => why };
}
const watched: LivenessWatch[] = [];

describe('liveness watch', () => {
  it('holds a part to answering once the supervisor saw it ready, whatever its own probe saw', async () => {
    // The part was ready for the supervisor, then stopped before the watch's own first look.
    const { silent } = watch(() => false, 60_000);
    watched.at(-1)?.markReady();
    const limit = SILENCE_LIMIT_MS + 3 * PROBE_INTERVAL_MS;
    const why = await Promise.race([
      silent,
      new Promise<string>((r) => setTimeout(() => r('never'), limit)),
    ]);
    watched.at(-1)?.stop();
    assert.match(why, /did not answer \/healthz for \d+s \(timeout\)/);
  });

  it('gives up on a part that is not ready long after its start', async () => {
    const { silent } = watch(() => false, 1_500);
    const why = await Promise.race([
      silent,
      new Promise<string>((r) => setTimeout(() => r('never'), 5_000)),
    ]);
    watched.at(-1)?.stop();
    assert.match(why, /was not ready 1\.5s after its start/);
  });

  // 500 chat clients reconnecting at once kept the nodes busy enough that /healthz took over a
  // second, six times running: the supervisor killed all four, and their clients came back to
  // the next ones, which it killed too. An answer however late is a node alive.
  it('keeps a part that answers every probe late, and kills one that answers none', async () => {
    const LATE_MS = 1_500;
    // As probes.ts's httpFailure: 'timeout' when the answer takes longer than the probe waits.
    const late: Liveness['check'] = (timeoutMs = 1000) =>
      new Promise((resolve) =>
        setTimeout(
          () => resolve(timeoutMs >= LATE_MS ? undefined : 'timeout'),
          Math.min(LATE_MS, timeoutMs),
        ),
      );
    const busy = watch(() => true, 60_000, late);
    const hung = watch(
      () => true,
      60_000,
      (timeoutMs = 1000) =>
        new Promise((resolve) => setTimeout(() => resolve('timeout'), timeoutMs)),
    );
    const watchedFor = SILENCE_LIMIT_MS + 4 * LATE_MS;
    const hungWhy = await Promise.race([
      hung.silent,
      new Promise<string>((r) => setTimeout(() => r('never'), watchedFor)),
    ]);
    await new Promise((r) => setTimeout(r, Math.max(0, watchedFor - SILENCE_LIMIT_MS)));
    for (const w of watched) w.stop();
    assert.match(hungWhy, /did not answer \/healthz for 6s \(timeout\)/);
    assert.equal(busy.why(), undefined, 'the busy part was kept');
  });
});
