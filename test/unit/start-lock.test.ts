// up.lock (scripts/kit/start-lock.ts) taken by processes racing for it: one wins each time, a
// fresh lock or one left by a process that is gone alike.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { processRecord } from '../../scripts/kit/pid-files.ts';

const run = promisify(execFile);
const RACER = new URL('../fixtures/lock-racer.ts', import.meta.url).pathname;

const ROUNDS = 200;

/**
 * Six racers for ROUNDS rounds, all at once, each round in a RUN_DIR of its own (`prepare` may
 * put something there first): asserts that every round had exactly one winner.
 */
async function raceForTheLock(prepare: (base: string) => void = () => {}): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'kit-lock-race-'));
  try {
    prepare(base);
    // After the six have started (tsx takes a while), all at once.
    const startAt = Date.now() + 3000;
    const outputs = await Promise.all(
      Array.from({ length: 6 }, () =>
        run(process.execPath, ['--import', 'tsx', RACER, base, String(startAt), String(ROUNDS)]),
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
    assert.equal(winners.size, ROUNDS, 'every round has a winner');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

describe('the start lock', () => {
  it('goes to exactly one of six processes taking it at the same moment, 200 times over', async () => {
    // Before up.lock was written whole (safe-files.ts createNew), a racer could read it empty,
    // take it for one left by a process gone, and start too: 3 rounds in 150 had two winners.
    await raceForTheLock();
  });

  it('goes to exactly one of six processes taking over a stale lock at the same moment', async () => {
    // Each racer that found the lock stale removed it and made its own: a racer slower to remove
    // it removed the lock a faster one had just made, and both started.
    await raceForTheLock((base) => {
      // A process that has exited: its record is a lock left behind (a supervisor SIGKILLed).
      const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)']);
      const stale = processRecord(Number(String(gone.stdout).trim()), process.execPath);
      for (let i = 0; i < ROUNDS; i++) {
        mkdirSync(join(base, String(i)));
        writeFileSync(join(base, String(i), 'up.lock'), stale);
      }
    });
  });
});
