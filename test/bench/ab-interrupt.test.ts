// `npm run bench:ab` interrupted: its kits run detached, and its other variants' servers are its
// children, so a signal that skipped the finally blocks stopping them left a kit's supervisor,
// nodes, nginx and Redis, or a forked server and the load generators, running until someone
// found them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { processesMentioning, waitFor } from '../harness/kit.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const KITS = join(tmpdir(), 'kit-launched-');
const LOADGEN = join(ROOT, 'scripts/bench/load/loadgen.ts');
const RAW_WS = join(ROOT, 'scripts/bench/servers/raw-ws.ts');

/**
 * Starts ab.ts on `arms`, waits until `up()` says the first arm runs under load, sends SIGINT to
 * ab.ts alone and returns its exit code and stderr.
 */
async function interruptAb(arms: string[], up: () => boolean): Promise<[number | null, string]> {
  const ab = spawn(
    process.execPath,
    ['--import', 'tsx', 'scripts/bench/ab.ts', '--reps', '1', '--warmup', '60', ...arms],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  ab.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = once(ab, 'exit');
  try {
    await waitFor(
      "the first arm's servers and load",
      () => up() && processesMentioning(LOADGEN).length > 0,
      60_000,
      200,
    );
    ab.kill('SIGINT');
    const [code] = (await exited) as [number | null];
    return [code, stderr];
  } finally {
    // Failed before its SIGINT: ab.ts gets one, to stop its kit, before it is killed.
    if (ab.exitCode === null && ab.signalCode === null) {
      ab.kill('SIGINT');
      const timer = setTimeout(() => ab.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    // A server left behind holds the pipe, which would keep this file from ever ending.
    ab.stderr.destroy();
  }
}

/** The load generators leave with the bench, rather than load a stopped server until their step
 * ends and then die on their reply to it. */
async function loadGeneratorsGone(stderr: string): Promise<void> {
  await waitFor('the load generators gone', () => processesMentioning(LOADGEN).length === 0, 5_000);
  assert.doesNotMatch(stderr, /ERR_IPC_CHANNEL_CLOSED/);
}

it('bench:ab interrupted stops the kit it started and exits 130', {
  timeout: 120_000,
}, async () => {
  assert.deepEqual(processesMentioning(KITS), [], 'a bench kit was running before the test');
  const [code, stderr] = await interruptAb(['a:', 'b:'], () =>
    processesMentioning(KITS).some((p) => p.includes('nginx: master')),
  );
  assert.equal(code, 130, stderr);
  assert.match(stderr, /SIGINT: stopping the kits still running/);
  assert.deepEqual(processesMentioning(KITS), []);
  await loadGeneratorsGone(stderr);
});

it('bench:ab interrupted stops a forked server arm and exits 130', {
  timeout: 120_000,
}, async () => {
  assert.deepEqual(processesMentioning(RAW_WS), [], 'a raw ws server was running before the test');
  const [code, stderr] = await interruptAb(
    ['raw:variant=raw-ws', 'a:'],
    () => processesMentioning(RAW_WS).length > 0,
  );
  try {
    assert.equal(code, 130, stderr);
    await waitFor('the raw ws server gone', () => processesMentioning(RAW_WS).length === 0, 5_000);
    await loadGeneratorsGone(stderr);
  } finally {
    for (const found of processesMentioning(RAW_WS)) process.kill(Number.parseInt(found, 10));
  }
});
