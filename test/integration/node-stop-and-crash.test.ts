// A node that stops or crashes: on SIGTERM it is not ready at once, hands its clients to the
// other nodes and exits 0 within 10 s; on SIGKILL the supervisor has it ready again within 3 s
// and its clients come back. Either way the supervisor starts it again.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { alive } from '../../scripts/kit/proc.ts';
import { ask, clientsOnNets, closeAll, next, type PlacedClient } from '../harness/clients.ts';
import { type Kit, launchKit, waitFor } from '../harness/kit.ts';

describe('a node stopping or crashing', () => {
  let kit: Kit;
  const clients: PlacedClient[] = [];
  before(async () => {
    kit = await launchKit({ env: { APP_MODULE: 'test/fixtures/echo-app.ts' } });
    clients.push(...(await clientsOnNets(kit.url, 16)));
  });
  after(async () => {
    closeAll(clients.map((c) => c.socket));
    await kit?.stop();
  });

  /** Where each client is now: an earlier test moved some of them. */
  async function refreshPlacement(): Promise<void> {
    await waitFor('every client connected', () => clients.every((c) => c.socket.connected), 15_000);
    for (const c of clients) c.node = (await ask<{ node: string }>(c.socket, 'whoami')).node;
  }

  it('fails readiness at once, hands its clients to other nodes and exits 0 within 10 s', async () => {
    await refreshPlacement();
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

  it('is running and ready again within 3 s of a SIGKILL, and its clients reconnect', async () => {
    await refreshPlacement();
    const victim = clients[0]?.node as string;
    const port = Number(victim.replace('node-', ''));
    const victims = clients.filter((c) => c.node === victim);
    const reconnected = victims.map((c) => next(c.socket, 'connect', 15_000));
    const oldPid = kit.pid(victim);

    const killedAt = Date.now();
    process.kill(oldPid, 'SIGKILL');
    await waitFor(
      'the node to answer /readyz again',
      async () => {
        try {
          const response = await fetch(`http://127.0.0.1:${port}/readyz`);
          const body = (await response.json()) as { status: string };
          return response.status === 200 && body.status === 'ready';
        } catch {
          return false;
        }
      },
      10_000,
      20,
    );
    const respawnMs = Date.now() - killedAt;
    console.log(`respawn after SIGKILL: ${respawnMs} ms (${victims.length} clients on ${victim})`);
    assert.notEqual(kit.pid(victim), oldPid);
    assert.ok(respawnMs < 3000, `ready again after ${respawnMs} ms`);

    await Promise.all(reconnected);
    assert.ok(victims.every((c) => c.socket.connected));
  });
});
