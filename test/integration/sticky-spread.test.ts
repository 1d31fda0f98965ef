// nginx's ip_hash spreads source networks over the nodes, and keeps each Socket.IO session on
// one node: long-polling works through nginx, and a polling client upgrades to WebSocket.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { ask, client, closeAll, connected, next } from '../harness/clients.ts';
import { type Kit, launchKit } from '../harness/kit.ts';

const APP_MODULE = 'test/fixtures/echo-app.ts';

describe('sticky routing through nginx', () => {
  let kit: Kit;
  const sockets: Socket[] = [];
  before(async () => {
    kit = await launchKit({ env: { APP_MODULE } });
  });
  after(async () => {
    closeAll(sockets);
    await kit?.stop();
  });

  it('spreads clients from different /24 source networks over at least 3 of 4 nodes', async () => {
    const nodes = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const socket = client(kit.url, { net: i + 1 });
        sockets.push(socket);
        const welcome = next<{ node: string }>(socket, 'welcome');
        await connected(socket);
        return (await welcome).node;
      }),
    );
    const distinct = new Set(nodes);
    const counts = Object.fromEntries(
      [...distinct].map((n) => [n, nodes.filter((m) => m === n).length]),
    );
    console.log('clients per node:', counts);
    assert.ok(distinct.size >= 3, `only ${distinct.size} nodes reached: ${JSON.stringify(counts)}`);
  });

  it('keeps a polling-only session on one node for 30 round trips', async () => {
    const socket = client(kit.url, { net: 101, transports: ['polling'] });
    sockets.push(socket);
    const welcome = next<{ node: string; id: string }>(socket, 'welcome');
    await connected(socket);
    const first = await welcome;
    for (let i = 0; i < 30; i++) {
      const answer = await ask<{ node: string; id: string }>(socket, 'whoami');
      assert.deepEqual(answer, first, `round trip ${i} reached another node or session`);
    }
    assert.equal(socket.io.engine.transport.name, 'polling');
  });

  it('upgrades a client that starts on polling to WebSocket, on the same node', async () => {
    const socket = client(kit.url, { net: 102, transports: ['polling', 'websocket'] });
    sockets.push(socket);
    // The manager opens its engine at once, so the first transport and the upgrade are seen here.
    assert.equal(socket.io.engine.transport.name, 'polling');
    const upgraded = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no upgrade within 5 s')), 5000);
      socket.io.engine.once('upgrade', (transport: { name: string }) => {
        clearTimeout(timer);
        resolve(transport.name);
      });
    });
    const welcome = next<{ node: string; id: string }>(socket, 'welcome');
    await connected(socket);
    const first = await welcome;
    assert.equal(await upgraded, 'websocket');
    assert.equal(socket.io.engine.transport.name, 'websocket');
    assert.deepEqual(await ask(socket, 'whoami'), first);
  });
});
