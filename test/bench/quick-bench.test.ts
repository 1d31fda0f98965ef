// `npm run bench -- --quick` as a smoke test: every variant starts, carries load and stops, and
// every scenario writes its figures. The figures themselves are the benchmark's business, not a
// test's: nothing here asserts a speed.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import type { Results } from '../../scripts/bench/summary.ts';
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
    ['plain', 'kit', 'kit-haproxy', 'docs-nginx', 'cluster', 'raw-ws'],
  );
  for (const f of results.fanout) {
    assert.ok(f.best > 0, `${f.variant} delivered nothing within the latency limit`);
    assert.ok(f.fixed && f.fixed.deliveredPerSec > 0 && Number.isFinite(f.fixed.cpuPerMillion));
  }
  assert.equal(results.connections?.failed, 0);
  assert.equal(results.connections?.opened, results.connections?.target);
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
  // Every variant was stopped: no process of a bench kit is left.
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-launched-')), []);
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-haproxy-')), []);
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-docs-nginx-')), []);
  rmSync(runDir, { recursive: true, force: true });
});
