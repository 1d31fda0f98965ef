// Browser origins are checked on every Socket.IO handshake, WebSocket upgrades included, where
// CORS does not apply: a page on another site cannot open a session to the kit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { type Kit, useKit } from '../harness/kit.ts';

/** Resolves 'open', or the HTTP status the upgrade was refused with. */
function upgrade(kit: Kit, origin?: string, host?: string): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `${kit.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`,
      {
        headers: { ...(origin ? { origin } : {}), ...(host ? { host } : {}) },
      },
    );
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (error) => reject(error));
  });
}

async function pollingHandshake(kit: Kit, origin?: string): Promise<number> {
  const response = await fetch(`${kit.url}/socket.io/?EIO=4&transport=polling`, {
    headers: origin ? { origin } : {},
  });
  await response.arrayBuffer();
  return response.status;
}

describe('origins, by default (same host only)', () => {
  const kit = useKit({ nodes: 1 });

  it('accepts the kit own origin and clients that send none', async () => {
    assert.equal(await upgrade(kit, kit.url), 'open');
    assert.equal(await upgrade(kit), 'open');
    assert.equal(await pollingHandshake(kit, kit.url), 200);
  });

  it('refuses a foreign origin on WebSocket upgrade and on polling', async () => {
    // Engine.IO answers a refused upgrade with 400 and a polling handshake with 403.
    assert.equal(await upgrade(kit, 'http://evil.example'), 400);
    assert.equal(await pollingHandshake(kit, 'http://evil.example'), 403);
  });

  it('refuses a page on a DNS name pointed at the kit (DNS rebinding)', async () => {
    // The browser sends the attacker's name as both Host and Origin.
    const host = `rebind.example:${kit.port}`;
    assert.equal(await upgrade(kit, `http://${host}`, host), 400);
    assert.equal(
      await upgrade(kit, `http://localhost:${kit.port}`, `localhost:${kit.port}`),
      'open',
    );
  });

  it('refuses the kit own host under another scheme', async () => {
    assert.equal(await upgrade(kit, kit.url.replace('http:', 'https:')), 400);
  });
});

describe('origins, with ALLOWED_ORIGINS', () => {
  const kit = useKit({
    nodes: 1,
    env: { ALLOWED_ORIGINS: 'https://chat.example.com,http://localhost:8080' },
  });

  it('accepts a listed origin', async () => {
    assert.equal(await upgrade(kit, 'https://chat.example.com'), 'open');
    assert.equal(await upgrade(kit, 'http://localhost:8080'), 'open');
  });

  it('refuses any other, its own host included', async () => {
    assert.equal(await upgrade(kit, 'https://evil.example.com'), 400);
    assert.equal(await upgrade(kit, 'https://chat.example.com.evil.example'), 400);
    assert.equal(await upgrade(kit, kit.url), 400);
    assert.equal(await pollingHandshake(kit, 'https://evil.example.com'), 403);
  });
});
