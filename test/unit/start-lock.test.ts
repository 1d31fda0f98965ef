// up.lock (scripts/kit/start-lock.ts) taken by processes racing for it: one wins each time.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const RACER = new URL('../fixtures/lock-racer.ts', import.meta.url).pathname;

describe('the start lock', () => {
  it('goes to exactly one of six processes taking it at the same moment, 200 times over', async () => {
    // Before up.lock was written whole (safe-files.ts createNew), a racer could read it empty,
    // take it for one left by a process gone, and start too: 3 rounds in 150 had two winners.
    const base = mkdtempSync(join(tmpdir(), 'kit-lock-race-'));
    const rounds = 200;
    try {
      // After the six have started (tsx takes a while), all at once.
      const startAt = Date.now() + 3000;
      const outputs = await Promise.all(
        Array.from({ length: 6 }, () =>
          run(process.execPath, ['--import', 'tsx', RACER, base, String(startAt), String(rounds)]),
        ),
      );
      const winners = new Map<number, number>();
      for (const { stdout } of outputs) {
        for (const round of JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as number[]) {
          winners.set(round, (winners.get(round) ?? 0) + 1);
        }
      }
      const twice = [...winners].filter(([, n]) => n > 1).map(([round]) => round);
      assert.deepEqual(twice, [], 'rounds with two winners');
      assert.equal(winners.size, rounds, 'every round has a winner');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
