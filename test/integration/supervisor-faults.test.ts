// The supervisor's own bad days: an nginx master killed outright (its workers must not live on
// beside the new nginx), and a foreground kit whose output pipe is gone when it is told to stop.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { alive } from '../../scripts/kit/proc.ts';
import { ROOT } from '../../services/node/config.ts';
import {
  freePorts,
  isolatedKitEnv,
  launchKit,
  portFree,
  processTree,
  waitFor,
} from '../harness/kit.ts';

describe('supervisor faults', () => {
  it('replaces an nginx master killed with SIGKILL, and its orphaned workers go too', async () => {
    const kit = await launchKit({ nodes: 1 });
    try {
      const master = kit.pid('nginx');
      const workers = processTree([master]).filter((p) => p !== master);
      assert.ok(workers.length > 0);
      process.kill(master, 'SIGKILL');
      await waitFor('old workers to be gone', () => workers.every((w) => !alive(w)), 5000);
      await waitFor(
        'a new nginx',
        () => alive(kit.pid('nginx')) && kit.pid('nginx') !== master,
        10_000,
      );
      await waitFor(
        'nginx to serve again',
        async () => (await fetch(`${kit.url}/healthz`).catch(() => undefined))?.ok,
        10_000,
      );
    } finally {
      await kit.stop();
    }
  });

  it('stops everything on SIGTERM even when its output pipe is gone (up.sh | tee, then Ctrl-C)', async () => {
    const [port, redisPort, nodePort] = (await freePorts(3)) as [number, number, number];
    const runDir = mkdtempSync(join(tmpdir(), 'kit-test-'));
    const env = isolatedKitEnv({
      PORT: String(port),
      NODE_PORTS: String(nodePort),
      REDIS_PORT: String(redisPort),
      RUN_DIR: runDir,
    });
    const up = spawn(join(ROOT, 'scripts/up.sh'), [], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      let output = '';
      await new Promise<void>((resolve, reject) => {
        up.stdout.on('data', (d) => {
          output += d;
          if (output.includes('ready in')) resolve();
        });
        up.once('exit', () => reject(new Error(`up.sh exited early: ${output}`)));
      });
      const pid = (part: string) =>
        Number(readFileSync(join(runDir, 'pids', `${part}.pid`), 'utf8').split(' ')[0]);
      const parts = ['redis', 'nginx', `node-${nodePort}`].map(pid);
      up.stdout.destroy();
      const exited = new Promise<number | null>((resolve) =>
        up.once('exit', (code) => resolve(code)),
      );
      process.kill(pid('supervisor'), 'SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(
        parts.every((p) => !alive(p)),
        'a part outlived its supervisor',
      );
      for (const p of [port, redisPort, nodePort])
        assert.ok(await portFree(p), `port ${p} still held`);
    } finally {
      if (up.exitCode === null) up.kill('SIGKILL');
      rmSync(runDir, { recursive: true, force: true });
    }
  });
});
