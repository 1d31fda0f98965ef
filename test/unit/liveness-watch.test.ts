// The supervisor's liveness watch, with probes the test controls: a part is held to answering
// from the moment the supervisor saw it ready, and one that never becomes ready after a start is
// given up on like a silent one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LivenessWatch, MAX_SILENT_PROBES, PROBE_INTERVAL_MS } from '../../scripts/kit/liveness.ts';

function watch(ready: () => boolean, readyTimeoutMs: number) {
  let why: string | undefined;
  const silent = new Promise<string>((resolve) => {
    const w = new LivenessWatch({
      name: 'node-1',
      liveness: { what: '/healthz', check: async () => 'timeout' },
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
    const limit = (MAX_SILENT_PROBES + 3) * PROBE_INTERVAL_MS;
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
});
