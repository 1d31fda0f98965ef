// Started as root, the kit runs Redis and the nodes as an unprivileged user (socketio-kit), not as
// root; nginx's workers run as nobody. Started as anyone else, they run as that user.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { userInfo } from 'node:os';
import { it } from 'node:test';
import { promisify } from 'node:util';
import { SERVICE_USER } from '../../scripts/kit/service-user.ts';
import { useKit } from '../harness/kit.ts';

const run = promisify(execFile);

async function userOf(pid: number): Promise<string> {
  return (await run('ps', ['-o', 'user:32=', '-p', String(pid)], { timeout: 5000 })).stdout.trim();
}

const kit = useKit({ nodes: 1 });

it('runs Redis and the nodes as socketio-kit when started as root, else as the user', async () => {
  const expected = process.getuid?.() === 0 ? SERVICE_USER : userInfo().username;
  const node = `node-${kit.nodePorts[0]}`;
  assert.equal(await userOf(kit.pid(node)), expected, `${node} runs as`);
  assert.equal(await userOf(kit.pid('redis')), expected, 'redis runs as');
  const health = await fetch(`http://127.0.0.1:${kit.nodePorts[0]}/readyz`);
  assert.equal(health.status, 200, 'a node started as the service user serves');
});
