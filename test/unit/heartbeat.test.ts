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
import { pingInStep, TICK_MS } from '../../services/node/heartbeat.ts';

const PING_MS = 300;

interface Peer {
  ws: WebSocket;
  /** When the client read each ping (performance.now()). */
  pings: number[];
  closed: Promise<unknown>;
}

/** A raw Engine.IO v4 client; it answers every ping with a pong while `answer` says so. */
async function peer(url: string, answer = () => true): Promise<Peer> {
  const ws = new WebSocket(`${url}/socket.io/?EIO=4&transport=websocket`);
  const pings: number[] = [];
  const closed = once(ws, 'close');
  ws.on('message', (data) => {
    if (String(data) !== '2') return;
    pings.push(performance.now());
    if (answer()) ws.send('3');
  });
  await once(ws, 'message'); // Engine.IO's open packet
  return { ws, pings, closed };
}

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
    // Ten clients 10 ms apart: Engine.IO pings each on its own, at ten moments; on a 50 ms tick
    // their pings fall on the two or three ticks the 90 ms between the first and the last span.
    const peers: Peer[] = [];
    for (let i = 0; i < 10; i++) {
      peers.push(await peer(kit.url));
      await sleep(10);
    }
    await sleep(PING_MS + 90 + 2 * TICK_MS + 100);
    const first = peers.map((p) => p.pings[0]);
    assert.ok(
      first.every((t) => t !== undefined),
      'every client was pinged',
    );
    const count = moments(first as number[]);
    const most = Math.ceil(90 / TICK_MS) + 1;
    assert.ok(count <= most, `first pings at ${count} moments, more than ${most}`);
    for (const p of peers) p.ws.close();
  });

  it('pings an answering client every pingInterval, at most a tick late, and keeps it', async () => {
    const p = await peer(kit.url);
    await sleep(5 * PING_MS + 2 * TICK_MS);
    assert.equal(p.ws.readyState, WebSocket.OPEN);
    assert.ok(p.pings.length >= 4, `${p.pings.length} pings in 5 intervals`);
    for (let i = 1; i < p.pings.length; i++) {
      const gap = (p.pings[i] as number) - (p.pings[i - 1] as number);
      // Measured at the client, which adds no more than the loop's lag.
      assert.ok(gap >= PING_MS - 5, `pings ${gap.toFixed(0)} ms apart, under ${PING_MS}`);
    }
    p.ws.close();
  });

  it('closes a client that stops answering, a pingTimeout after the unanswered ping', async () => {
    let answering = true;
    const p = await peer(kit.url, () => answering);
    await sleep(PING_MS + 2 * TICK_MS);
    answering = false;
    const began = performance.now();
    await p.closed;
    const waited = performance.now() - began;
    assert.ok(p.pings.length >= 2, 'pinged again after it stopped answering');
    assert.ok(
      waited <= PING_MS + TICK_MS + 2 * PING_MS + 1000,
      `closed after ${waited.toFixed(0)} ms`,
    );
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
      for (const p of peers) p.ws.close();
    } finally {
      await plain.close();
    }
  });
});
