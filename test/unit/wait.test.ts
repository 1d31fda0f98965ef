// The kit's one way of waiting (scripts/kit/wait.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WaitTimeout, waitUntil } from '../../scripts/kit/wait.ts';

describe('waitUntil', () => {
  it('gives the first value the probe returns, trying again after a throw', async () => {
    let calls = 0;
    const value = await waitUntil(
      'three calls',
      () => {
        calls += 1;
        if (calls === 1) throw new Error('refused');
        return calls === 3 ? 'third' : undefined;
      },
      { timeoutMs: 2000, intervalMs: 5 },
    );
    assert.equal(value, 'third');
  });

  it('keeps its deadline when the probe keeps throwing', { timeout: 5000 }, async () => {
    const began = Date.now();
    await assert.rejects(
      waitUntil(
        'a probe that throws',
        () => {
          throw new Error('refused');
        },
        { timeoutMs: 300, intervalMs: 10, maxIntervalMs: 50 },
      ),
      (error) =>
        error instanceof WaitTimeout &&
        /a probe that throws: not after 0.3s \(refused\)/.test(error.message),
    );
    assert.ok(Date.now() - began < 2000, 'gave up near its deadline');
  });
});
