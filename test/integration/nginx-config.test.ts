// The rendered nginx configuration passes `nginx -t` for any number of nodes, and the renderer
// fills in only its own placeholders.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadKitConfig } from '../../scripts/kit/config.ts';
import { renderNginx, renderTemplate } from '../../scripts/kit/render-nginx.ts';
import { prepareRunDir, runDir } from '../../scripts/kit/run-dir.ts';
import { KitError } from '../../services/node/errors.ts';
import { heartbeat, SOCKET_OPTIONS } from '../../services/node/socket-options.ts';

describe('nginx configuration', () => {
  const root = mkdtempSync(join(tmpdir(), 'kit-nginx-'));
  // mkdtemp makes it 0700; nginx's workers (user nobody) must pass through to the sockets.
  chmodSync(root, 0o711);
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const count of [1, 4, 16]) {
    it(`renders for ${count} node(s) and passes nginx -t`, async () => {
      const ports = Array.from({ length: count }, (_, i) => 41000 + i);
      const config = loadKitConfig({
        NODE_PORTS: ports.join(','),
        RUN_DIR: join(root, String(count)),
      });
      const dir = runDir(config.runDir);
      prepareRunDir(dir);
      const conf = readFileSync(await renderNginx(config, dir), 'utf8');
      // Under the temporary folder nginx's workers can reach RUN_DIR: one socket per node.
      for (const port of ports)
        assert.ok(conf.includes(`server unix:${dir.sockets}/node-${port}.sock max_fails=0;`));
      assert.match(conf, /ip_hash;/);
      assert.match(conf, /proxy_set_header Upgrade \$http_upgrade;/);
      assert.doesNotMatch(conf, /\$\{[A-Z]/, 'a placeholder was left in');
      const connections = Number(/worker_connections (\d+);/.exec(conf)?.[1]);
      const rlimit = Number(/worker_rlimit_nofile (\d+);/.exec(conf)?.[1]);
      assert.ok(connections > 1000 && connections < rlimit, `${connections} within ${rlimit}`);
      const readTimeout = Number(/proxy_read_timeout (\d+)s;/.exec(conf)?.[1]);
      // The longest heartbeat HEARTBEAT allows too: a quiet, healthy socket is never cut.
      for (const { pingInterval, pingTimeout } of [SOCKET_OPTIONS, heartbeat(15)]) {
        assert.ok(
          readTimeout * 1000 > pingInterval + pingTimeout,
          'proxy_read_timeout must exceed pingInterval + pingTimeout',
        );
      }
    });
  }

  it('proxies to the node ports with NGINX_UPSTREAM=tcp', async () => {
    const config = loadKitConfig({
      NODE_PORTS: '41100,41101',
      RUN_DIR: join(root, 'tcp'),
      NGINX_UPSTREAM: 'tcp',
    });
    const dir = runDir(config.runDir);
    prepareRunDir(dir);
    const conf = readFileSync(await renderNginx(config, dir), 'utf8');
    assert.match(conf, /server 127\.0\.0\.1:41100 max_fails=0;\n\s+server 127\.0\.0\.1:41101 /);
    assert.doesNotMatch(conf, /unix:/);
  });

  /** The configuration a balancer in front of `upstreams` renders, in RUN_DIR `folder`. */
  async function balancerConf(upstreams: string, folder: string): Promise<string> {
    const config = loadKitConfig({
      KIT_ROLE: 'balancer',
      UPSTREAMS: upstreams,
      RUN_DIR: join(root, folder),
    });
    const dir = runDir(config.runDir);
    prepareRunDir(dir);
    return readFileSync(await renderNginx(config, dir), 'utf8');
  }

  it('retries a 503 on the next node only under /socket.io/ (elsewhere it would mark a node down)', async () => {
    const conf = await balancerConf('198.18.0.12:6001,198.18.0.13:6001', 'remote');
    assert.match(conf, /server 198\.18\.0\.12:6001 max_fails=1 /);
    const retries = [...conf.matchAll(/^\s*proxy_next_upstream ([^;]*);/gm)].map((m) => m[1]);
    assert.deepEqual(retries, [
      'error timeout http_502',
      'error timeout http_502 http_503',
      'error timeout http_502 http_503',
    ]);
    const socketIo = conf.slice(conf.indexOf('location /socket.io/'));
    assert.match(socketIo.slice(0, socketIo.indexOf('location @new_websocket')), /http_503/);
  });

  it('sends new WebSockets to the same nodes, in the same order, without passive health', async () => {
    const conf = await balancerConf(
      '198.18.0.12:6001,198.18.0.13:6001,198.18.0.11:6002',
      'remote2',
    );
    const block = (name: string) => {
      const from = conf.indexOf(`upstream ${name} {`);
      assert.ok(from >= 0, `upstream ${name}`);
      const text = conf.slice(from, conf.indexOf('}', from));
      return [...text.matchAll(/^\s*server (\S+) ([^;]*);/gm)].map((m) => [m[1], m[2]]);
    };
    const nodes = block('socketio_nodes');
    const upgrades = block('socketio_upgrades');
    assert.deepEqual(
      upgrades.map(([address]) => address),
      nodes.map(([address]) => address),
    );
    assert.ok(nodes.every(([, marks]) => marks === 'max_fails=1 fail_timeout=5s'));
    assert.ok(upgrades.every(([, marks]) => marks === 'max_fails=0'));
    // Every upstream a location proxies to is defined.
    for (const [, name] of conf.matchAll(/proxy_pass http:\/\/([^;/]+);/g)) {
      assert.match(conf, new RegExp(`upstream ${name} \\{`), `upstream ${name}`);
    }
  });

  it('leaves nginx variables alone and fills in the kit placeholders', () => {
    const out = renderTemplate('listen ${PORT}; set $a $http_upgrade; return 200 ${host};', {
      PORT: '80',
    });
    assert.equal(out, 'listen 80; set $a $http_upgrade; return 200 ${host};');
  });

  it('refuses an unknown placeholder, naming it and its line', () => {
    assert.throws(
      () => renderTemplate('a\nlisten ${PROT};', { PORT: '80' }),
      (error: Error) =>
        error instanceof KitError &&
        error.code === 'KIT_ERR_TEMPLATE' &&
        /\$\{PROT\} \(line 2\)/.test(error.message),
    );
  });
});
