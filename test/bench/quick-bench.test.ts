// `npm run bench -- --quick` as a smoke test: every variant starts, carries load and stops, and
// every scenario writes its figures. The figures themselves are the benchmark's business, not a
// test's: nothing here asserts a speed.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import type { Results } from '../../scripts/bench/summary.ts';
import { ALL_VARIANTS } from '../../scripts/bench/variants.ts';
import { processesMentioning, runDoor } from '../harness/kit.ts';

it('npm run bench -- --quick runs every variant and scenario and writes its results', {
  timeout: 300_000,
}, async () => {
  const began = Date.now();
  // Its own RUN_DIR, where a quick run writes its results.
  const runDir = mkdtempSync(join(tmpdir(), 'kit-quick-bench-'));
  const written = (file: string) => readFileSync(join(runDir, 'bench', file), 'utf8');
  const run = await runDoor('bench', { RUN_DIR: runDir }, ['--quick'], 280_000);
  assert.equal(run.code, 0, run.stderr.split('\n').slice(-5).join('\n'));
  console.log(`quick bench took ${Math.round((Date.now() - began) / 1000)} s`);
  const results = JSON.parse(written('quick.json')) as Results;
  assert.deepEqual(
    results.fanout.map((f) => f.variant),
    ALL_VARIANTS,
  );
  for (const f of results.fanout) {
    // Carried load: a latency limit met is a speed, the benchmark's business (a busy CI machine
    // saw the kit and the plain process each miss p99 < 50 ms at the lowest rate once).
    assert.ok(
      f.steps.flat().some((s) => s.received > 0),
      `${f.variant} delivered nothing`,
    );
    assert.ok(f.fixed && f.fixed.deliveredPerSec > 0 && Number.isFinite(f.fixed.cpuPerMillion));
  }
  assert.deepEqual(
    results.connections?.steps.map((s) => [s.target, s.opened, s.held, s.failed]),
    [
      [1000, 1000, 1000, 0],
      [2000, 2000, 2000, 0],
    ],
  );
  for (const s of results.connections?.steps ?? []) assert.ok(s.heapPerConnectionBytes > 0);
  assert.ok((results.connections?.socketIoAlone?.heapPerConnectionBytes ?? 0) > 0);
  assert.deepEqual(
    results.scaling?.map((p) => [p.variant, p.subscribers, p.rooms, p.failed]),
    [
      ['kit', 100, 1, undefined],
      ['kit', 200, 10, undefined],
    ],
  );
  for (const p of results.scaling ?? []) assert.ok(p.deliveredPerSec > 0);
  assert.deepEqual(results.scenarioFailures, []);
  assert.ok((results.http?.nginxMedian ?? 0) > 0 && (results.http?.directMedian ?? 0) > 0);
  for (const d of results.hashing ?? []) {
    assert.equal(
      d.ipHash.reduce((a, b) => a + b, 0),
      d.clients,
    );
    assert.equal(
      d.consistent.reduce((a, b) => a + b, 0),
      d.clients,
    );
  }
  assert.ok(results.targets.length >= 7);
  assert.match(written('quick.md'), /Targets/);
  assert.match(written('quick-fanout.svg'), /^<svg/);
  assert.match(
    written('quick-curves.svg'),
    /^<svg[\s\S]*Memory per idle connection[\s\S]*room size/,
  );
  // Every variant was stopped: no process of a bench kit is left.
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-launched-')), []);
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-haproxy-')), []);
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-docs-nginx-')), []);
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-floor-')), []);
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-docs-floor-')), []);
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-bench-cluster-')), []);
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-design-floor-')), []);
  rmSync(runDir, { recursive: true, force: true });
});
