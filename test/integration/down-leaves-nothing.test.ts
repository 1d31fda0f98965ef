// down.sh stops everything up.sh started, frees every port, and is safe to run again; it never
// touches a process that merely listens on one of the kit's ports.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { alive } from '../../scripts/kit/proc.ts';
import { launchKit, portFree, processesMentioning, runDoor } from '../harness/kit.ts';

describe('down.sh', () => {
  it('leaves no process and no held port behind, twice over', async () => {
    const kit = await launchKit({ nodes: 2 });
    const pids = ['supervisor', 'redis', 'nginx', ...kit.nodePorts.map((p) => `node-${p}`)].map(
      (p) => kit.pid(p),
    );
    assert.ok(pids.every(alive));
    const sockets = join(kit.runDir, 'sockets');
    assert.deepEqual(
      readdirSync(sockets).sort(),
      kit.nodePorts.map((p) => `node-${p}.sock`).sort(),
      'a Unix socket per node, for nginx',
    );

    const down = await runDoor('down', kit.env);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /stopped: supervisor/);
    assert.ok(
      pids.every((pid) => !alive(pid)),
      'a process of the kit is still alive',
    );
    assert.deepEqual(await processesMentioning(kit.runDir), []);
    for (const port of [kit.port, kit.redisPort, ...kit.nodePorts]) {
      assert.ok(await portFree(port), `port ${port} is still held`);
    }
    assert.deepEqual(readdirSync(sockets), [], 'a node socket file was left');

    const again = await runDoor('down', kit.env);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /nothing was running/);
    await kit.stop();
  });

  it('cleans up after a supervisor killed with SIGKILL', async () => {
    const kit = await launchKit({ nodes: 2 });
    const children = ['redis', 'nginx', ...kit.nodePorts.map((p) => `node-${p}`)].map((p) =>
      kit.pid(p),
    );
    process.kill(kit.pid('supervisor'), 'SIGKILL');
    const down = await runDoor('down', kit.env);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(
      children.every((pid) => !alive(pid)),
      'an orphaned part is still alive',
    );
    for (const port of [kit.port, kit.redisPort, ...kit.nodePorts]) {
      assert.ok(await portFree(port), `port ${port} is still held`);
    }
    await kit.stop();
  });
});
