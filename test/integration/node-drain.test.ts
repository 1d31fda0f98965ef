// SIGTERM on a node: not ready at once, its clients move to the other nodes, and it exits 0
// within 10 s (then the supervisor starts it again).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { alive } from '../../scripts/kit/run-dir.ts';
import { clientsOnNets, closeAll, next } from '../harness/clients.ts';
import { type Kit, startKit, waitFor } from '../harness/kit.ts';

describe('graceful drain', () => {
  let kit: Kit;
  const clients: Array<{ socket: Socket; node: string }> = [];
  before(async () => {
    kit = await startKit({ env: { APP_MODULE: 'test/fixtures/echo-app.ts' } });
    clients.push(...(await clientsOnNets(kit.url, 16)));
  });
  after(async () => {
    closeAll(clients.map((c) => c.socket));
    await kit?.stop();
  });

  it('fails readiness at once, hands its clients to other nodes and exits 0 within 10 s', async () => {
    const node = clients[0]?.node as string;
    const port = Number(node.replace('node-', ''));
    const pid = kit.pid(node);
    const movers = clients.filter((c) => c.node === node);
    const landed = movers.map((c) => next<{ node: string }>(c.socket, 'welcome', 10_000));

    const began = Date.now();
    process.kill(pid, 'SIGTERM');
    const readiness = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status,
      () => 'refused',
    );
    assert.notEqual(readiness, 200, 'a draining node must not report ready');

    await waitFor('the node to exit', () => !alive(pid), 10_000, 20);
    const exitedMs = Date.now() - began;
    const exitLine = await waitFor(
      'the supervisor to record the exit',
      () =>
        readFileSync(join(kit.runDir, 'logs', 'supervisor.log'), 'utf8')
          .split('\n')
          .find((l) => l.includes(`${node} exited`)),
      5000,
    );
    assert.match(exitLine, /exited \(code 0\)/);

    const newNodes = (await Promise.all(landed)).map((w) => w.node);
    console.log(
      `drain: exited ${exitedMs} ms after SIGTERM; ${movers.length} clients moved to ${[...new Set(newNodes)].join(', ')}`,
    );
    assert.ok(exitedMs < 10_000);
    assert.ok(
      newNodes.every((n) => n !== node),
      'a client came back to the draining node',
    );
  });
});
