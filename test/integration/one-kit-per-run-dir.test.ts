// Two up.sh started at once on the same RUN_DIR: exactly one starts the kit, the other refuses with
// one clear line and starts nothing, and down.sh then leaves no process behind.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { freePorts, portFree, processesMentioning, runDoor } from '../harness/kit.ts';

it('two up.sh at once on one RUN_DIR: one kit, one clear refusal, nothing stranded', async () => {
  const runDir = mkdtempSync(join(tmpdir(), 'kit-twice-'));
  const [port, redisPort, ...nodePorts] = (await freePorts(4)) as [number, number, ...number[]];
  const env = {
    PORT: String(port),
    NODE_PORTS: nodePorts.join(','),
    REDIS_PORT: String(redisPort),
    RUN_DIR: runDir,
  };
  try {
    const results = await Promise.all([
      runDoor('up', env, ['--detach']),
      runDoor('up', env, ['--detach']),
    ]);
    const started = results.filter((r) => r.code === 0);
    const refused = results.filter((r) => r.code !== 0);
    assert.equal(started.length, 1, results.map((r) => r.stderr).join('\n'));
    assert.equal(refused.length, 1);
    assert.equal(refused[0]?.code, 75, 'KIT_ERR_RUNNING exits 75');
    assert.match(
      refused[0]?.stderr.trim().split('\n').at(-1) ?? '',
      new RegExp(
        `^up\\.sh: KIT_ERR_RUNNING the kit is already running \\(or starting\\) from RUN_DIR=${runDir}`,
      ),
    );
    const status = await runDoor('status', env);
    assert.equal(status.code, 0, status.stderr);
  } finally {
    const down = await runDoor('down', env);
    assert.equal(down.code, 0, down.stderr);
    const left = await processesMentioning(runDir);
    rmSync(runDir, { recursive: true, force: true });
    assert.deepEqual(left, [], 'a process was left behind');
    for (const p of [port, redisPort, ...nodePorts]) {
      assert.ok(await portFree(p), `port ${p} is still held`);
    }
  }
});
