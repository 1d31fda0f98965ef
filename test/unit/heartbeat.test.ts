// Heartbeats in step (services/node/heartbeat.ts), on a real Socket.IO server and raw Engine.IO
// v4 clients over WebSockets: pings go out on the node's shared tick, a client that answers
// keeps its connection, one that does not is closed.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Server } from 'socket.io';
import { WebSocket } from 'ws';
import { heapAfterGc } from '../../scripts/bench/apps/heap.ts';
import { pingInStep, TICK_MS } from '../../services/node/heartbeat.ts';
import { type RawSocket, rawSocket } from '../harness/raw-engine.ts';

const PING_MS = 300;

/** A raw Engine.IO v4 client from 127.0.1.1, and when its open packet came. */
async function peer(url: string, pong?: (pings: number) => boolean) {
  const socket = await rawSocket(url, 1, { pong });
  return Object.assign(socket, { opened: performance.now() });
}
type Peer = RawSocket & { opened: number };

async function server(inStep: boolean) {
  const http = createServer();
  const io = new Server(http, { pingInterval: PING_MS, pingTimeout: 2 * PING_MS });
  if (inStep) pingInStep(io);
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return { io, url, close: () => new Promise((r) => io.close(r)) };
}

/** Times less than 2 ms apart are one moment: how many moments `times` fall on. */
function moments(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted.filter((t, i) => i === 0 || t - (sorted[i - 1] as number) >= 2).length;
}

describe('heartbeats in step', () => {
  let kit: Awaited<ReturnType<typeof server>>;
  before(async () => {
    kit = await server(true);
  });
  after(() => kit.close());

  it('pings clients that connected at ten different moments on the shared tick', async () => {
    // Ten clients about 10 ms apart: Engine.IO pings each on its own, at ten moments; on a 50 ms
    // tick their pings fall on as many ticks as the time from the first to the last spans.
    const peers: Peer[] = [];
    for (let i = 0; i < 10; i++) {
      peers.push(await peer(kit.url));
      await sleep(10);
    }
    const span = (peers.at(-1) as Peer).opened - (peers[0] as Peer).opened;
    await sleep(PING_MS + 2 * TICK_MS + 200);
    const first = peers.map((p) => p.pings[0]);
    assert.ok(
      first.every((t) => t !== undefined),
      'every client was pinged',
    );
    const count = moments(first as number[]);
    const most = Math.ceil(span / TICK_MS) + 1;
    assert.ok(most < 10, `the clients took ${span.toFixed(0)} ms to connect: too slow to tell`);
    assert.ok(count <= most, `first pings at ${count} moments, more than ${most}`);
    for (const p of peers) p.close();
  });

  it('pings an answering client every pingInterval, at most a tick late, and keeps it', async () => {
    const p = await peer(kit.url);
    await sleep(6 * PING_MS + 2 * TICK_MS);
    assert.equal(p.ws.readyState, WebSocket.OPEN);
    assert.ok(p.pings.length >= 4, `${p.pings.length} pings in 6 intervals`);
    const gaps = p.pings.slice(1).map((t, i) => t - (p.pings[i] as number));
    // Read at the client: a ping comes a pingInterval after the pong to the one before, which
    // the client sent when it read that one, so never sooner; the loop's lag can make a gap
    // longer, never shorter. The median over several, and 25 ms, keep that lag out of the upper
    // bound (a pong comes just after a tick, so a ping is typically a whole tick late).
    for (const gap of gaps)
      assert.ok(gap >= PING_MS, `pings ${gap.toFixed(0)} ms apart, under ${PING_MS}`);
    const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)] as number;
    assert.ok(
      median <= PING_MS + TICK_MS + 25,
      `pings ${median.toFixed(0)} ms apart (median), more than a tick over ${PING_MS}`,
    );
    p.close();
  });

  it('closes a client that stops answering, a pingTimeout after the unanswered ping', async () => {
    // It answers the first ping only.
    const p = await peer(kit.url, (pings) => pings < 2);
    await p.closed;
    const closedAt = performance.now();
    assert.equal(p.pings.length, 2, 'pinged again after its pong, then closed');
    const waited = closedAt - (p.pings[1] as number);
    assert.ok(
      waited >= 2 * PING_MS - 5 && waited <= 2 * PING_MS + 1000,
      `closed ${waited.toFixed(0)} ms after the unanswered ping`,
    );
  });

  it('lets go of a closed client: the wheel does not keep it', async () => {
    // A client that closed right after connecting stays on the wheel until its tick; a
    // FinalizationRegistry sees whether its Engine.IO socket can be collected before that.
    const gone: string[] = [];
    const registry = new FinalizationRegistry<string>((id) => gone.push(id));
    kit.io.engine.once('connection', (socket: { id: string }) =>
      registry.register(socket, socket.id),
    );
    const p = await peer(kit.url);
    p.close();
    await p.closed;
    // Well before its tick (a pingInterval after it opened).
    for (let i = 0; i < 5 && gone.length === 0; i++) {
      await sleep(20);
      heapAfterGc();
    }
    await sleep(0);
    assert.equal(gone.length, 1, 'the closed socket was still held before its tick');
  });

  it('leaves other servers in the process on Engine.IO timers', async () => {
    const plain = await server(false);
    try {
      const sockets: { pingIntervalTimer: unknown }[] = [];
      kit.io.engine.once('connection', (s) => sockets.push(s));
      plain.io.engine.once('connection', (s) => sockets.push(s));
      const peers = [await peer(kit.url), await peer(plain.url)];
      const [inStep, own] = sockets;
      assert.equal(inStep?.pingIntervalTimer?.constructor.name, 'Beat');
      assert.equal(own?.pingIntervalTimer?.constructor.name, 'Timeout');
      for (const p of peers) p.close();
    } finally {
      await plain.close();
    }
  });
});
