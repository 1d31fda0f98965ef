// `npm run bench:ab` interrupted: its kits run detached, so a Ctrl-C that skipped the finally
// blocks stopping them left their supervisor, nodes, nginx and Redis running until someone
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

it('bench:ab interrupted stops the kit it started and exits 130', {
  timeout: 120_000,
}, async () => {
  assert.deepEqual(processesMentioning(KITS), [], 'a bench kit was running before the test');
  const ab = spawn(
    process.execPath,
    ['--import', 'tsx', 'scripts/bench/ab.ts', '--reps', '1', '--warmup', '60', 'a:', 'b:'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  ab.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = once(ab, 'exit');
  try {
    // The first arm's kit up (nginx last) and its load generators started.
    await waitFor(
      "the first arm's kit and load",
      () =>
        processesMentioning(KITS).some((p) => p.includes('nginx: master')) &&
        processesMentioning(LOADGEN).length > 0,
      60_000,
      200,
    );
    ab.kill('SIGINT');
    const [code] = await exited;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGINT: stopping the kits still running/);
    assert.deepEqual(processesMentioning(KITS), []);
    // The load generators leave with the bench, rather than load a stopped kit until their step
    // ends and then die on their reply to it.
    await waitFor(
      'the load generators gone',
      () => processesMentioning(LOADGEN).length === 0,
      5_000,
      100,
    );
    assert.doesNotMatch(stderr, /ERR_IPC_CHANNEL_CLOSED/);
  } finally {
    ab.kill('SIGKILL');
  }
});
