// A node killed with SIGKILL is started again by the supervisor and its clients come back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { clientsOnNets, closeAll, next } from '../harness/clients.ts';
import { type Kit, startKit, waitFor } from '../harness/kit.ts';

describe('node respawn', () => {
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

  it('is running and ready again within 3 s of a SIGKILL, and its clients reconnect', async () => {
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
