// What an operator sees: Prometheus metrics per node, status.sh's table, nginx's stub_status,
// (The Admin UI's login: test/security/hostile-clients.test.ts.)
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chatUser } from '../harness/chat.ts';
import { ask } from '../harness/clients.ts';
import { freePorts, runDoor, useKit } from '../harness/kit.ts';

describe('observability', () => {
  const kit = useKit({ nodes: 2 });

  it('exposes Prometheus metrics per node that move with traffic', async () => {
    const user = await chatUser(kit.url, 1, { username: 'metered' });
    await ask(user.socket, 'join', 'metrics');
    const port = Number(user.session.node.replace('node-', ''));
    const response = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
    const text = await response.text();
    user.socket.disconnect();
    const value = (name: string) =>
      Number(new RegExp(`^${name}\\{[^}]*\\} ([0-9.e+-]+)$`, 'm').exec(text)?.[1]);
    assert.ok(value('socketio_connected_clients') >= 1);
    assert.ok(value('socketio_events_received_total') >= 1);
    assert.ok(value('socketio_packets_sent_total') >= 2);
    assert.ok(value('nodejs_eventloop_lag_seconds') >= 0);
    for (const name of [
      'redis_client_errors_total',
      'redis_client_ready_total',
      'socketio_adapter_errors_total',
    ]) {
      assert.match(text, new RegExp(`# TYPE ${name} counter`));
    }
    assert.match(text, new RegExp(`node="${user.session.node}"`));
  });

  it('status.sh prints a line per part and exits 0 when all are up', async () => {
    const status = await runDoor('status', kit.env);
    assert.equal(status.code, 0, status.stderr);
    const lines = status.stdout.trim().split('\n');
    assert.equal(lines.length, 1 + 1 + kit.nodePorts.length + 1);
    for (const part of ['redis', ...kit.nodePorts.map((p) => `node-${p}`), 'nginx']) {
      assert.match(status.stdout, new RegExp(`^${part}\\s+up\\s+\\d+`, 'm'));
    }
  });

  it('status.sh exits non-zero and says which part is down', async () => {
    const node = `node-${kit.nodePorts[1]}`;
    const pid = kit.pid(node);
    process.kill(pid, 'SIGSTOP');
    try {
      const status = await runDoor('status', kit.env);
      assert.notEqual(status.code, 0);
      assert.match(status.stderr, new RegExp(node));
    } finally {
      // On a slow machine the supervisor may already have replaced the silent node (liveness.ts).
      try {
        process.kill(pid, 'SIGCONT');
      } catch {}
    }
  });

  it('serves nginx stub_status on loopback', async () => {
    const text = await (await fetch(`${kit.url}/nginx_status`)).text();
    assert.match(text, /Active connections: \d+/);
  });
});

it('status.sh on a kit never started reports every part down and creates nothing', async () => {
  const runDir = join(tmpdir(), `kit-never-started-${process.pid}`);
  // Ports of its own: a kit running on the default ones (./scripts/up.sh beside npm test) is not this one.
  const [port, redisPort, ...nodePorts] = await freePorts(4);
  const status = await runDoor('status', {
    RUN_DIR: runDir,
    PORT: String(port),
    NODE_PORTS: nodePorts.join(','),
    REDIS_PORT: String(redisPort),
  });
  assert.equal(status.code, 1);
  assert.match(status.stdout, /^redis\s+down/m);
  assert.match(status.stdout, /^nginx\s+down/m);
  assert.equal(
    existsSync(runDir),
    false,
    'looking at the kit must not make its RUN_DIR or secrets',
  );
});
