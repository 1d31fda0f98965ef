// Probes and scrapes (/healthz, /readyz, /metrics) are not logged at the default LOG_LEVEL
// (info): the supervisor probes each node every second, and their request lines drowned the
// log. Other requests still are, and a probe's own warnings still reach the log.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Writable } from 'node:stream';
import { it } from 'node:test';
import Fastify from 'fastify';
import { Server } from 'socket.io';
import { QUIET, registerHealthRoutes } from '../../services/node/health.ts';
import { createMetrics, registerMetricsRoute } from '../../services/node/metrics.ts';

it('logs no request lines for probes and scrapes at info, and still logs other requests', async () => {
  const lines: { msg?: string; req?: { url?: string }; level: number }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const app = Fastify({ logger: { level: 'info', stream } });
  const io = new Server(createServer());
  try {
    registerHealthRoutes(app, { nodeId: 'node-test', port: 1 }, io, {
      notReadyReason: () => 'draining',
    });
    registerMetricsRoute(
      app,
      createMetrics('node-test', () => io),
      '127.0.0.1',
    );
    app.get('/page', async (request) => {
      request.log.warn('page warning');
      return 'ok';
    });
    app.get('/warns', QUIET, async (request) => {
      request.log.warn('kept');
      return 'ok';
    });
    const status = async (url: string) => (await app.inject({ url })).statusCode;
    assert.equal(await status('/healthz'), 200);
    assert.equal(await status('/readyz'), 503);
    assert.equal(await status('/metrics'), 200);
    assert.equal(await status('/page'), 200);
    assert.equal(await status('/warns'), 200);

    const requested = lines.filter((l) => l.msg === 'incoming request').map((l) => l.req?.url);
    assert.deepEqual(requested, ['/page']);
    const completed = lines.filter((l) => l.msg === 'request completed');
    assert.equal(completed.length, 1, 'one "request completed", for /page');
    // A route with the probes' option still logs its warnings.
    assert.deepEqual(
      lines.filter((l) => l.level === 40).map((l) => l.msg),
      ['page warning', 'kept'],
    );
  } finally {
    io.close();
    await app.close();
  }
});
