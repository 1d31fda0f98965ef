// The nodes serve their Unix sockets whatever NGINX_UPSTREAM says, so reload.sh can move nginx
// from TCP to the sockets (and back) under running nodes without a failed request. The same kit,
// started with HEARTBEAT=3, shows its nodes took it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { httpFrom } from '../harness/http.ts';
import { runDoor, useKit } from '../harness/kit.ts';

describe('switching how nginx reaches the nodes', () => {
  const kit = useKit({ nodes: 2, env: { NGINX_UPSTREAM: 'tcp', HEARTBEAT: '3' } });

  const conf = () => readFileSync(join(kit.runDir, 'nginx', 'nginx.conf'), 'utf8');
  const allServed = async () => {
    for (let i = 0; i < 20; i++) {
      // A connection per request (httpFrom): one kept alive from before the reload would be
      // closed by the old workers, which says nothing about the new configuration.
      assert.equal((await httpFrom(1, `${kit.url}/healthz`, { fresh: true })).status, 200);
      const handshake = await httpFrom(1, `${kit.url}/socket.io/?EIO=4&transport=polling`, {
        fresh: true,
      });
      assert.equal(handshake.status, 200);
      assert.match(handshake.body, /"sid"/);
    }
  };

  it('serves over TCP with NGINX_UPSTREAM=tcp', async () => {
    assert.match(conf(), new RegExp(`server 127\\.0\\.0\\.1:${kit.nodePorts[0]} `));
    assert.doesNotMatch(conf(), /server unix:/);
    await allServed();
  });

  it('moves to the sockets on reload.sh with NGINX_UPSTREAM=unix, and back', async () => {
    const toUnix = await runDoor('reload', { ...kit.env, NGINX_UPSTREAM: 'unix' });
    assert.equal(toUnix.code, 0, toUnix.stderr);
    assert.ok(conf().includes(`server unix:${kit.runDir}/sockets/node-${kit.nodePorts[0]}.sock`));
    await allServed();
    const toTcp = await runDoor('reload', kit.env);
    assert.equal(toTcp.code, 0, toTcp.stderr);
    assert.doesNotMatch(conf(), /server unix:/);
    await allServed();
  });

  it('hands HEARTBEAT to every node: its handshake says a ping every 3 s, a pong within 6 s', async () => {
    for (let net = 1; net <= 40; net++) {
      const handshake = await httpFrom(net, `${kit.url}/socket.io/?EIO=4&transport=polling`);
      const open = JSON.parse(handshake.body.slice(1)) as {
        pingInterval: number;
        pingTimeout: number;
      };
      assert.deepEqual([open.pingInterval, open.pingTimeout], [3000, 6000]);
    }
  });
});
