// The supervisor's liveness watch, with probes the test controls: a part is held to answering
// from the moment the supervisor saw it ready, one that never becomes ready after a start is
// given up on like a silent one, and a part that answers late is busy, not hung. The silence
// limit is shortened here (3 s instead of the kit's 6 s) to keep the file quick.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Liveness, LivenessWatch, PROBE_INTERVAL_MS } from '../../scripts/kit/liveness.ts';

const LIMIT_MS = 3_000;
/** Longer than the limit, as the kit's (a draining node gets its stop grace). */
const REFUSED_GRACE_MS = 4_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function watch(
  ready: () => boolean,
  readyTimeoutMs: number,
  check: Liveness['check'] = async () => 'timeout',
) {
  // Taken before the watch starts its timers: a time measured from here is never short.
  const since = Date.now();
  let why: string | undefined;
  const silent = new Promise<string>((resolve) => {
    const w = new LivenessWatch({
      name: 'node-1',
      liveness: { what: '/healthz', check },
      ready: async () => ready(),
      refusedGraceMs: REFUSED_GRACE_MS,
      readyTimeoutMs,
      silenceLimitMs: LIMIT_MS,
      onSilent: (reason) => {
        why = reason;
        resolve(reason);
      },
    });
    watched.push(w);
  });
  return { silent, why: () => why, since };
}
const watched: LivenessWatch[] = [];

describe('liveness watch', () => {
  it('holds a part to answering once the supervisor saw it ready, whatever its own probe saw', async () => {
    // The part was ready for the supervisor, then stopped before the watch's own first look.
    const { silent } = watch(() => false, 60_000);
    watched.at(-1)?.markReady();
    const limit = LIMIT_MS + 3 * PROBE_INTERVAL_MS;
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
    // Ready at the first look (1 s), probed from 2 s on: the hung one is killed at 5 s.
    const watchedFor = 2 * PROBE_INTERVAL_MS + LIMIT_MS + 3 * LATE_MS;
    const hungWhy = await Promise.race([
      hung.silent,
      new Promise<string>((r) => setTimeout(() => r('never'), watchedFor)),
    ]);
    await sleep(Math.max(0, hung.since + watchedFor - Date.now()));
    busy.silent.catch(() => {});
    for (const w of watched) w.stop();
    assert.match(hungWhy, /did not answer \/healthz for [34]s \(timeout\)/);
    assert.equal(busy.why(), undefined, 'the busy part was kept');
  });

  it('kills a part failing fast once the limit has passed, and gives a refusing one its grace', async () => {
    const failing = watch(
      () => true,
      60_000,
      async () => 'HTTP 500',
    );
    const refusing = watch(
      () => true,
      60_000,
      async () => 'refused',
    );
    const [failed, refused] = await Promise.all(
      [failing, refusing].map((w) =>
        Promise.race([
          w.silent.then((why) => ({ why, afterMs: Date.now() - w.since })),
          sleep(2 * PROBE_INTERVAL_MS + REFUSED_GRACE_MS + 3 * PROBE_INTERVAL_MS).then(
            () => undefined,
          ),
        ]),
      ),
    );
    for (const w of watched) w.stop();
    assert.match(failed?.why ?? 'never', /did not answer \/healthz for [34]s \(HTTP 500\)/);
    // The ready look comes at 1 s, the first probe at 2 s: neither is killed before its time.
    assert.ok((failed?.afterMs ?? 0) >= 2 * PROBE_INTERVAL_MS + LIMIT_MS, `${failed?.afterMs} ms`);
    assert.match(refused?.why ?? 'never', /did not answer \/healthz for [45]s \(refused\)/);
    assert.ok(
      (refused?.afterMs ?? 0) >= 2 * PROBE_INTERVAL_MS + REFUSED_GRACE_MS,
      `${refused?.afterMs} ms`,
    );
  });
});
