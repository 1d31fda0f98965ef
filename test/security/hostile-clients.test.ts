// A hostile client against a running kit: CONNECT floods on one connection, Admin UI floods,
// handshake-limit bypasses, a client that stops reading. Each attack must cost the sender, never
// the node or other users: every packet is answered or the attacker's connection is closed, the
// node's event loop stays free, and a healthy client's round trips stay short on the attacked
// node and on another. The figures printed here are the closing note's.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { chatUser } from '../harness/chat.ts';
import { client, connected, next } from '../harness/clients.ts';
import { httpFrom } from '../harness/http.ts';
import { type Kit, launchKit, useKit } from '../harness/kit.ts';
import { mb, nodeFigures } from '../harness/node-metrics.ts';
import { polling, pollingSession, rawSocket } from '../harness/raw-engine.ts';

const ADMIN_PASSWORD = 'kit-admin-Vq9!dLm2#tR7';

/** Round trips of an acknowledged event, every `everyMs`, until stopped: the longest, in ms. */
function roundTrips(socket: Socket, event: string, payload: unknown, everyMs = 120) {
  let longest = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const began = performance.now();
      await socket.timeout(5_000).emitWithAck(event, ...(payload === undefined ? [] : [payload]));
      longest = Math.max(longest, performance.now() - began);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop(): Promise<number> {
      running = false;
      await loop;
      return longest;
    },
  };
}

const portOf = (node: string) => Number(node.replace('node-', ''));

describe('hostile clients against the chat (Admin UI on)', () => {
  let kit: Kit;
  /** Source network → the node ip_hash sends it to. */
  const nodeOf = new Map<number, string>();
  let attackedNet = 0;
  let otherNet = 0;
  let healthyHere: Socket;
  let healthyThere: Socket;

  before(async () => {
    kit = await launchKit({ nodes: 2, env: { ADMIN_PASSWORD } });
    for (let net = 40; net < 60 && new Set(nodeOf.values()).size < 2; net++) {
      const user = await chatUser(kit.url, net, { username: `placer${net}` });
      nodeOf.set(net, user.session.node);
      user.socket.disconnect();
    }
    const nets = [...nodeOf.keys()];
    attackedNet = nets[0] as number;
    otherNet = nets.find((n) => nodeOf.get(n) !== nodeOf.get(attackedNet)) as number;
    // Healthy users: one on the attacked node (a neighbour of the attacker's network), one on
    // the other node.
    healthyHere = (await chatUser(kit.url, attackedNet, { username: 'healthy-here' })).socket;
    healthyThere = (await chatUser(kit.url, otherNet, { username: 'healthy-there' })).socket;
  });
  after(async () => {
    healthyHere?.disconnect();
    healthyThere?.disconnect();
    await kit?.stop();
  });

  /** Runs `attack` while healthy clients measure round trips; prints what it cost the node. */
  async function underAttack(what: string, attack: () => Promise<void>) {
    const port = portOf(nodeOf.get(attackedNet) as string);
    const before = await nodeFigures(port);
    // An invalid payload is answered at once, without Redis: a pure event-loop round trip.
    const here = roundTrips(healthyHere, 'join', 0);
    const there = roundTrips(healthyThere, 'join', 0);
    await attack();
    await new Promise((r) => setTimeout(r, 300));
    const [hereMs, thereMs] = [await here.stop(), await there.stop()];
    const afterwards = await nodeFigures(port);
    const figures = {
      heap: `${mb(before.heapUsedBytes)} → ${mb(afterwards.heapUsedBytes)}`,
      rss: `${mb(before.rssBytes)} → ${mb(afterwards.rssBytes)}`,
      eventLoopMaxMs: Math.round(afterwards.eventLoopMaxSeconds * 1000),
      roundTripMs: { attackedNode: Math.round(hereMs), otherNode: Math.round(thereMs) },
    };
    console.log(`${what}:`, JSON.stringify(figures));
    assert.ok(hereMs < 500, `round trip on the attacked node ${hereMs.toFixed(0)} ms`);
    assert.ok(thereMs < 500, `round trip on the other node ${thereMs.toFixed(0)} ms`);
    return { before, afterwards };
  }

  it('answers every admin CONNECT without a string password and leaves nothing behind', async () => {
    // Built before the clock starts: the test process's own work must not count as the node's.
    const pad = 'p'.repeat(300_000);
    const frame = `40/admin,${JSON.stringify({ username: 'admin', password: { pad } })}`;
    const sockets = await Promise.all(
      Array.from({ length: 10 }, () => rawSocket(kit.url, attackedNet)),
    );
    const { before, afterwards } = await underAttack(
      'admin CONNECTs, no string password',
      async () => {
        for (const s of sockets) {
          s.send(frame, frame, frame);
        }
        // Each CONNECT is refused (`44/admin,…`), or its connection closed for failing too often.
        await Promise.all(
          sockets.map((s) =>
            Promise.race([s.waitFrames((f) => f.startsWith('44/admin,'), 3), s.closed]),
          ),
        );
      },
    );
    assert.equal(
      afterwards.value('node_unhandled_errors_total'),
      before.value('node_unhandled_errors_total'),
      'an admin CONNECT raised an unhandled error',
    );
    for (const s of sockets) s.close();
  });

  it('makes a password guess cost one hash, and closes a connection that keeps guessing', async () => {
    const sockets = await Promise.all(
      Array.from({ length: 20 }, () => rawSocket(kit.url, attackedNet)),
    );
    await underAttack('admin password guessing, 20 connections × 40 guesses', async () => {
      for (const s of sockets) {
        s.send(
          ...Array.from(
            { length: 40 },
            (_, i) => `40/admin,${JSON.stringify({ username: 'admin', password: `guess-${i}` })}`,
          ),
        );
      }
      await Promise.all(sockets.map((s) => s.closed));
    });
    for (const s of sockets) {
      assert.ok(
        s.frames.filter((f) => f.startsWith('44/admin,')).length <= 10,
        'a connection got more than 10 answers before it was closed',
      );
      assert.ok(!s.frames.some((f) => f.startsWith('40/admin,')), 'a wrong password got in');
    }
    // The address that guessed is refused for a while, whatever it sends now.
    const guesser = await rawSocket(kit.url, attackedNet);
    guesser.send(`40/admin,${JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD })}`);
    const [refused] = await guesser.waitFrames((f) => f.startsWith('44/admin,'), 1);
    assert.match(refused as string, /too many failed logins/);
    guesser.close();
    // The password still works from elsewhere.
    const admin = await rawSocket(kit.url, otherNet);
    admin.send(`40/admin,${JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD })}`);
    await admin.waitFrames((f) => f.startsWith('40/admin,{"sid"'), 1);
    admin.close();
  });

  it('makes one socket, and one chat session, of 100 CONNECTs on one WebSocket', async () => {
    const s = await rawSocket(kit.url, attackedNet);
    await underAttack('100 CONNECTs on one WebSocket', async () => {
      s.send(
        ...Array.from({ length: 100 }, (_, i) => `40${JSON.stringify({ username: `flood${i}` })}`),
      );
      await Promise.race([s.closed, new Promise((r) => setTimeout(r, 2_000))]);
    });
    const sessions = s.frames.filter((f) => f.startsWith('42["session"'));
    const accepted = s.frames.filter((f) => f.startsWith('40{"sid"'));
    console.log(
      `100 CONNECTs on one WebSocket: ${accepted.length} accepted, ${sessions.length} chat sessions, ` +
        `${s.frames.filter((f) => f.startsWith('44')).length} refused, connection ${s.ws.readyState === 3 ? 'closed' : 'open'}`,
    );
    // More CONNECTs than any client sends close the connection, possibly before the first
    // finished its middleware: one socket at most, never a hundred.
    assert.ok(accepted.length <= 1);
    assert.ok(sessions.length <= 1);
    assert.equal(s.ws.readyState, 3, 'the flooding connection is still open');
    s.close();
  });

  it('refuses a second CONNECT to a namespace the connection is joining or has joined', async () => {
    const s = await rawSocket(kit.url, attackedNet);
    s.send(
      ...Array.from({ length: 5 }, (_, i) => `40${JSON.stringify({ username: `twice${i}` })}`),
    );
    // The four extra CONNECTs are refused while the first is in the chat's middleware; one that
    // comes after the first connected is Socket.IO's own "invalid state", which closes the
    // connection. Either way: one socket, one session.
    await Promise.race([s.waitFrames((f) => f.startsWith('42["users"'), 1), s.closed]);
    await new Promise((r) => setTimeout(r, 200));
    const refused = s.frames.filter((f) => f.startsWith('44{'));
    assert.ok(s.frames.filter((f) => f.startsWith('40{"sid"')).length <= 1);
    assert.ok(s.frames.filter((f) => f.startsWith('42["session"')).length <= 1);
    assert.ok(refused.length === 4 || s.ws.readyState === 3, 'an extra CONNECT went unanswered');
    if (refused.length > 0)
      assert.match(refused[0] as string, /already has a socket in this namespace/);
    if (s.ws.readyState !== 3) {
      s.send(`40${JSON.stringify({ username: 'again' })}`);
      await s.closed;
    }
    assert.equal(s.frames.filter((f) => f.startsWith('42["session"')).length <= 1, true);
    s.close();
  });

  it('makes one chat session of 8 CONNECTs in one polling POST', async () => {
    const net = otherNet;
    const sid = await pollingSession(kit.url, net);
    const payload = Array.from(
      { length: 8 },
      (_, i) => `40${JSON.stringify({ username: `postflood${i}` })}`,
    ).join('\x1e');
    await polling(kit.url, net, 'POST', payload, sid);
    let received = '';
    for (let i = 0; i < 6 && !received.includes('42["users"'); i++) {
      received += `\x1e${await polling(kit.url, net, 'GET', '', sid).catch(() => '')}`;
    }
    const packets = received.split('\x1e');
    assert.equal(packets.filter((p) => p.startsWith('40{"sid"')).length, 1);
    assert.equal(packets.filter((p) => p.startsWith('42["session"')).length, 1);
  });

  for (const [what, query, net] of [
    ['`SID=` in capitals', '&SID=not-a-session', 61],
    ['a second, empty `sid=`', '&sid=not-a-session&sid=', 65],
    ['a second `sid` without `=`', '&sid=not-a-session&sid', 66],
    ['a `sid` spelt `%73id`', '&sid=not-a-session&%73id=', 67],
  ] as const) {
    it(`counts ${what} as a handshake in nginx, as engine.io does`, async () => {
      const url = `${kit.url}/socket.io/?EIO=4&transport=polling${query}`;
      const answers = await Promise.all(Array.from({ length: 300 }, () => httpFrom(net, url)));
      const limited = answers.filter((a) => a.status === 429).length;
      console.log(
        `300 handshakes with ${query} from one address: ${limited} refused by nginx (429)`,
      );
      assert.ok(limited > 0, `the handshake limit was bypassed with ${query}`);
    });
  }

  it('serves /metrics to this host only', async () => {
    const port = portOf(nodeOf.get(attackedNet) as string);
    assert.equal((await httpFrom(62, `${kit.url}/metrics`)).status, 403);
    // Through nginx from 127.0.0.1, and on the node's own address, an operator still reads them.
    assert.equal((await fetch(`${kit.url}/metrics`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
    // A node that is handed someone else's address by its proxy refuses them too.
    const forwarded = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { 'x-real-ip': '198.18.0.9' },
    });
    assert.equal(forwarded.status, 404);
  });
});

describe('the Admin UI without ADMIN_PASSWORD', () => {
  const kit = useKit({ nodes: 1 });

  it('is off: /admin is not a namespace', async () => {
    const s = await rawSocket(kit.url, 63);
    s.send(`40/admin,${JSON.stringify({ username: 'admin', password: 'anything-at-all' })}`);
    const [refusal] = await s.waitFrames((f) => f.startsWith('44/admin,'), 1);
    assert.match(refusal as string, /Invalid namespace/);
    s.close();
  });
});

describe('a client that stops reading (echo app)', () => {
  const kit = useKit({ nodes: 2, env: { APP_MODULE: 'test/fixtures/echo-app.ts' } });

  it('is cut off; the node stays bounded and its other clients get everything', async () => {
    const net = 64;
    const reader = await rawSocket(kit.url, net);
    reader.send('40');
    const [welcome] = await reader.waitFrames((f) => f.startsWith('42["welcome"'), 1);
    const node = (JSON.parse((welcome as string).slice(2)) as [string, { node: string }])[1].node;
    const port = portOf(node);
    const healthy = client(kit.url, { net });
    const healthyWelcome = next<{ node: string }>(healthy, 'welcome');
    await connected(healthy);
    assert.equal((await healthyWelcome).node, node, 'both clients share a node');
    let bulk = 0;
    healthy.on('bulk', () => {
      bulk += 1;
    });

    // The reader stops reading: its socket buffers, then nginx's, then the node's fill up.
    (reader.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const before = await nodeFigures(port);
    const EMITS = 150;
    const data = 'b'.repeat(200_000);
    const probe = roundTrips(healthy, 'whoami', undefined, 50);
    for (let i = 0; i < EMITS; i++) {
      const answer = await fetch(`http://127.0.0.1:${port}/api/emit`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${kit.emitToken()}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ event: 'bulk', data }),
      });
      assert.equal(answer.status, 202);
    }
    const deadline = Date.now() + 20_000;
    while (bulk < EMITS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const longest = await probe.stop();
    const afterwards = await nodeFigures(port);
    const closed = afterwards.value('socketio_slow_clients_closed_total');
    console.log(
      `slow reader, ${EMITS} × 200 kB broadcast: ${JSON.stringify({
        slowClientsClosed: closed,
        heap: `${mb(before.heapUsedBytes)} → ${mb(afterwards.heapUsedBytes)}`,
        rss: `${mb(before.rssBytes)} → ${mb(afterwards.rssBytes)}`,
        healthyReceived: bulk,
        roundTripMs: Math.round(longest),
      })}`,
    );
    assert.equal(bulk, EMITS, 'the healthy client missed broadcasts');
    assert.equal(closed, 1, 'the node did not close the client that stopped reading');
    // Once it reads again it finds its connection closed.
    (reader.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await Promise.race([
      reader.closed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the reader was not disconnected')), 30_000),
      ),
    ]);
    healthy.disconnect();
  });
});
