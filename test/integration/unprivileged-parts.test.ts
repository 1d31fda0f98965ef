// Started as root, the kit runs Redis and the nodes as an unprivileged user (socketio-kit), not as
// root; nginx's workers run as nobody. Not started as root, there is nothing to drop.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, it } from 'node:test';
import { promisify } from 'node:util';
import { type Kit, launchKit } from '../harness/kit.ts';

const run = promisify(execFile);

async function userOf(pid: number): Promise<string> {
  return (await run('ps', ['-o', 'user:32=', '-p', String(pid)], { timeout: 5000 })).stdout.trim();
}

let kit: Kit;
before(async () => {
  kit = await launchKit({ nodes: 1 });
});
after(async () => kit?.stop());

it('runs Redis and the nodes as socketio-kit when started as root', async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('not running as root: the kit has no privileges to drop');
    return;
  }
  const node = `node-${kit.nodePorts[0]}`;
  assert.equal(await userOf(kit.pid(node)), 'socketio-kit', `${node} runs as`);
  assert.equal(await userOf(kit.pid('redis')), 'socketio-kit', 'redis runs as');
  const health = await fetch(`http://127.0.0.1:${kit.nodePorts[0]}/readyz`);
  assert.equal(health.status, 200, 'a node started as socketio-kit serves');
});
