// nginx reaches the nodes over Unix sockets only where its workers can open them; `auto` falls
// back to TCP and says why, `unix` refuses to start, naming the variable.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadKitConfig } from '../../scripts/kit/config.ts';
import { prepareRunDir, runDir } from '../../scripts/kit/run-dir.ts';
import {
  chooseUpstream,
  nodeSocket,
  unreachableWhy,
  upstreamServers,
} from '../../scripts/kit/upstream.ts';
import { ConfigError } from '../../services/node/config.ts';

describe('the way from nginx to the nodes', () => {
  const root = mkdtempSync(join(tmpdir(), 'kit-upstream-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const ports = [6001, 6002];

  it('is a socket per node in RUN_DIR/sockets, passable but not listable by others', () => {
    // mkdtemp makes a 0700 folder; the kit's own folders let nginx's workers through.
    chmodSync(root, 0o711);
    const config = loadKitConfig({ RUN_DIR: join(root, 'open', 'run') });
    const dir = runDir(config.runDir);
    prepareRunDir(dir);
    const upstream = chooseUpstream(config, dir);
    assert.equal(upstream.kind, 'unix');
    assert.equal(nodeSocket(dir, 6001), join(dir.sockets, 'node-6001.sock'));
    assert.equal(unreachableWhy(dir, ports, 0), undefined);
  });

  it('falls back to TCP under a folder that user nobody cannot pass, saying which', () => {
    const home = join(root, 'home');
    mkdirSync(home, { mode: 0o700 });
    chmodSync(home, 0o700);
    const config = loadKitConfig({ RUN_DIR: join(home, 'app', '.run') });
    const dir = runDir(config.runDir);
    assert.match(unreachableWhy(dir, ports, 0) ?? '', /user nobody.*\/home \(mode 0700\)/);
    // Not root: the workers run as this user, who can.
    assert.equal(unreachableWhy(dir, ports, 1000), undefined);
    if (process.getuid?.() === 0) {
      const upstream = chooseUpstream(config, dir);
      assert.equal(upstream.kind, 'tcp');
      assert.match(upstream.kind === 'tcp' ? upstream.why : '', /\/home \(mode 0700\)/);
      assert.throws(
        () =>
          chooseUpstream(loadKitConfig({ RUN_DIR: config.runDir, NGINX_UPSTREAM: 'unix' }), dir),
        (e) =>
          e instanceof ConfigError && e.variable === 'NGINX_UPSTREAM' && /0700/.test(e.message),
      );
    }
  });

  it('judges a RUN_DIR reached through a symbolic link by where it really is', () => {
    const hidden = join(root, 'hidden');
    mkdirSync(join(hidden, 'run'), { recursive: true });
    chmodSync(hidden, 0o700);
    symlinkSync(join(hidden, 'run'), join(root, 'link'));
    const why = unreachableWhy(runDir(join(root, 'link')), ports, 0);
    assert.match(why ?? '', /hidden \(mode 0700\)/);
  });

  it('falls back to TCP when the socket paths would be too long for Linux', () => {
    const dir = runDir(join(root, 'x'.repeat(90)));
    assert.match(unreachableWhy(dir, ports, 1000) ?? '', /longer than Linux allows/);
  });

  it('is TCP when NGINX_UPSTREAM=tcp, and a bad value is refused by name', () => {
    const config = loadKitConfig({ RUN_DIR: join(root, 'tcp'), NGINX_UPSTREAM: 'tcp' });
    assert.equal(chooseUpstream(config, runDir(config.runDir)).kind, 'tcp');
    assert.throws(
      () => loadKitConfig({ NGINX_UPSTREAM: 'udp' }),
      (e) => e instanceof ConfigError && e.variable === 'NGINX_UPSTREAM' && /"udp"/.test(e.message),
    );
  });

  it('is the nodes UPSTREAMS names, in its order, over TCP with passive health but for new WebSockets', () => {
    const config = loadKitConfig({
      RUN_DIR: join(root, 'lb'),
      KIT_ROLE: 'balancer',
      UPSTREAMS: '198.18.0.12:6001,198.18.0.11:6001,[fd00::3]:6002',
    });
    const dir = runDir(config.runDir);
    assert.deepEqual(upstreamServers(config, dir), [
      'server 198.18.0.12:6001 max_fails=1 fail_timeout=5s;',
      'server 198.18.0.11:6001 max_fails=1 fail_timeout=5s;',
      'server [fd00::3]:6002 max_fails=1 fail_timeout=5s;',
    ]);
    // New WebSockets go to the same nodes, in the same order, without passive health.
    assert.deepEqual(upstreamServers(config, dir, 'none'), [
      'server 198.18.0.12:6001 max_fails=0;',
      'server 198.18.0.11:6001 max_fails=0;',
      'server [fd00::3]:6002 max_fails=0;',
    ]);
    // A balancer without UPSTREAMS proxies to NODE_HOST's NODE_PORTS, the same way.
    const alone = loadKitConfig({
      KIT_ROLE: 'balancer',
      NODE_HOST: '198.18.0.12',
      NODE_PORTS: '6001',
    });
    assert.deepEqual(upstreamServers(alone, dir), [
      'server 198.18.0.12:6001 max_fails=1 fail_timeout=5s;',
    ]);
    // Local nodes keep max_fails=0 (a dead local node refuses at once; see nginx.conf.template).
    const local = loadKitConfig({ RUN_DIR: join(root, 'tcp2'), NGINX_UPSTREAM: 'tcp' });
    assert.deepEqual(upstreamServers(local, runDir(local.runDir)).slice(0, 1), [
      'server 127.0.0.1:6001 max_fails=0;',
    ]);
  });
});
