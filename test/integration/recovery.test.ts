// ADAPTER=redis-streams: connection state recovery across nodes, with an application of the
// test's own (test/fixtures/feed-app.ts). Every node emits numbered ticks to room `feed`, and the
// test posts numbered events to POST /api/emit at 100/s (with an Idempotency-Key, retried until
// answered 202); 50 clients spread over four nodes. Through restart.sh, reload.sh, a 2 s cut of
// some clients' connections, and a node SIGKILLed, each client checks what it got: no number
// twice, and no gap unless it was told (`socket.recovered === false` on reconnecting).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ChatUser, chatUser, chatUserAwayFrom } from '../harness/chat.ts';
import { ask, client, connected } from '../harness/clients.ts';
import { type Kit, kitRedis, launchKit, runDoor, waitFor } from '../harness/kit.ts';
import { rawSocket } from '../harness/raw-engine.ts';
import { throughPhase, Watcher } from '../harness/recovery.ts';
import { type TestRedis, testRedis } from '../harness/redis.ts';

const APP_MODULE = 'test/fixtures/feed-app.ts';
const CLIENTS = 50;
// 200 events/s reach each of the 50 clients, all of them decoded in this one process: enough for
// every reconnect to meet events in flight. Twice that made this process the busiest on the
// machine (a CI run told 5 clients of 60 while 99 emits went unanswered for 5 s), and a client
// that falls behind long enough is rightly told (its offset trimmed, its pings unanswered).
const API_PER_S = 100;
const TICKS_PER_S_PER_NODE = 25;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One command to the kit's own Redis. */
async function redisCli(kit: Kit, ...args: string[]): Promise<string> {
  const redis = await kitRedis(kit);
  try {
    return String(await redis.sendCommand(args));
  } finally {
    redis.destroy();
  }
}

describe('connection state recovery (ADAPTER=redis-streams)', { timeout: 300_000 }, () => {
  let kit: Kit;
  const watchers: Watcher[] = [];

  before(async () => {
    kit = await launchKit({
      env: {
        APP_MODULE,
        ADAPTER: 'redis-streams',
        APP_TICKS_PER_S: String(TICKS_PER_S_PER_NODE),
      },
    });
    for (let i = 0; i < CLIENTS; i++) {
      const socket = client(kit.url, { net: 1 + (i % 50) });
      watchers.push(new Watcher(socket));
    }
    await Promise.all(watchers.map((w) => connected(w.socket)));
    await waitFor('every client greeted', () => watchers.every((w) => w.node !== ''), 10_000);
    const spread = new Set(watchers.map((w) => w.node));
    assert.ok(spread.size >= 3, `clients spread over the nodes: ${[...spread]}`);
  });

  after(async () => {
    for (const w of watchers) w.socket.disconnect();
    await kit?.stop();
  });

  /** A phase of test/harness/recovery.ts, the emits posted through nginx. */
  const through = (what: string, disturb: () => Promise<void>) =>
    throughPhase({
      what,
      watchers,
      perSecond: API_PER_S,
      post: (body, key) =>
        fetch(`${kit.url}/api/emit`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${kit.emitToken()}`,
            'content-type': 'application/json',
            'idempotency-key': key,
          },
          body,
          signal: AbortSignal.timeout(5000),
        }).then(
          (r) => r.status,
          () => 0,
        ),
      disturb,
    });

  it('recovers every client through restart.sh (rolling): every event once, in order', async () => {
    const outcome = await through('restart.sh', async () => {
      const restart = await runDoor('restart', kit.env);
      assert.equal(restart.code, 0, restart.stderr);
    });
    assert.ok(outcome.reconnects >= CLIENTS, 'every client was moved at least once');
    assert.equal(outcome.told, 0, 'every reconnect recovered');
  });

  it('loses nothing through reload.sh', async () => {
    const outcome = await through('reload.sh', async () => {
      const reload = await runDoor('reload', kit.env);
      assert.equal(reload.code, 0, reload.stderr);
    });
    assert.equal(outcome.told, 0);
  });

  it('recovers clients whose connection is cut for 2 s', async () => {
    const cut = watchers.slice(0, 10);
    const outcome = await through('2 s cut of 10 clients', async () => {
      for (const w of cut) {
        w.socket.io.reconnectionDelay(2000);
        w.socket.io.reconnectionDelayMax(2000);
        w.socket.io.randomizationFactor(0);
        w.socket.io.engine.close();
      }
      await waitFor('the cut clients back', () => cut.every((w) => w.socket.connected), 10_000);
      for (const w of cut) {
        w.socket.io.reconnectionDelay(200);
        w.socket.io.reconnectionDelayMax(1000);
        w.socket.io.randomizationFactor(0.5);
      }
    });
    assert.equal(outcome.reconnects, cut.length);
    assert.equal(outcome.recovered, cut.length, 'every cut client recovered');
  });

  it('keeps a broadcast before a disconnection issued after it on the same node', async () => {
    const w = watchers.at(-1) as Watcher;
    const seen: string[] = [];
    w.socket.once('bye', () => seen.push('bye'));
    w.socket.once('disconnect', () => seen.push('disconnect'));
    w.socket.emit('leave me');
    await waitFor('disconnected', () => seen.includes('disconnect'), 5000);
    assert.deepEqual(seen, ['bye', 'disconnect']);
    w.socket.connect();
    await connected(w.socket);
  });

  it('after a node SIGKILLed, tells each of its clients, or recovers it without a gap', async () => {
    const port = kit.nodePorts[1] as number;
    const victims = watchers.filter((w) => w.node.startsWith(`node-${port}`));
    assert.ok(victims.length > 0, 'some clients are on the node to kill');
    const outcome = await through('SIGKILL of a node', async () => {
      process.kill(kit.pid(`node-${port}`), 'SIGKILL');
      await waitFor('its clients away', () => victims.every((w) => w.reconnects > 0), 15_000);
    });
    // Its clients' sessions were never stored: each is told (recovered === false).
    assert.equal(outcome.told, victims.length, 'each client of the killed node was told');
  });
});

describe('Redis away with ADAPTER=redis-streams', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let kit: Kit;
  const watchers: Watcher[] = [];

  before(async () => {
    redis = await testRedis();
    await redis.start();
    kit = await launchKit({
      nodes: 2,
      env: { APP_MODULE, ADAPTER: 'redis-streams', APP_TICKS_PER_S: '50', REDIS_URL: redis.url },
    });
    for (let i = 0; i < 10; i++) watchers.push(new Watcher(client(kit.url, { net: 1 + i })));
    await Promise.all(watchers.map((w) => connected(w.socket)));
    await waitFor('every client greeted', () => watchers.every((w) => w.node !== ''), 10_000);
  });
  after(async () => {
    for (const w of watchers) w.socket.disconnect();
    await kit?.stop();
    await redis?.cleanup();
  });

  it('tells every client once Redis answers, when ticks were refused while it was away', async () => {
    await pause(1000);
    // The ticks emitted meanwhile are refused (not queued: the stream's connection is down), a
    // gap in every client's numbers. Its clients stay connected; Redis comes back empty (no
    // persistence here).
    await redis.kill();
    await pause(2000);
    await redis.start();
    await waitFor('every client told', () => watchers.every((w) => w.told > 0), 20_000).catch(
      () => undefined,
    );
    await pause(1500);
    const problems = watchers.flatMap((w) => w.problems);
    console.log(
      `# Redis away 2 s: ${watchers.filter((w) => w.told > 0).length} of ${watchers.length} clients told; ${problems.length} gaps or repeats untold`,
    );
    assert.deepEqual(problems.slice(0, 5), [], 'no gap without being told');
    assert.ok(
      watchers.every((w) => w.told > 0),
      'every client was told it lost continuity',
    );
  });
});

describe('CONNECT floods with ADAPTER=redis-streams', { timeout: 120_000 }, () => {
  let kit: Kit;
  before(async () => {
    kit = await launchKit({ nodes: 1, env: { ADAPTER: 'redis-streams', APP_MODULE } });
  });
  after(async () => kit?.stop());

  it('counts CONNECTs that carry a session id before Redis is asked about them', async () => {
    const lookups = async () =>
      Number(
        /cmdstat_xrange:calls=(\d+)/.exec(await redisCli(kit, 'INFO', 'commandstats'))?.[1] ?? 0,
      );
    const before = await lookups();
    const s = await rawSocket(kit.url, 7);
    // Each names a session to restore: Socket.IO looks it up (GET+DEL, XRANGE) before any
    // middleware, so the per-connection CONNECT budget must apply before that.
    s.send(
      ...Array.from(
        { length: 200 },
        (_, i) => `40${JSON.stringify({ pid: `p${i}`, offset: '1-0' })}`,
      ),
    );
    await Promise.race([s.closed, pause(3000)]);
    const made = (await lookups()) - before;
    console.log(`# 200 CONNECTs with a session id on one WebSocket: ${made} lookups in Redis`);
    assert.ok(made <= 10, `at most the CONNECT burst (10) reaches Redis, not ${made}`);
    assert.equal(s.ws.readyState, 3, 'the flooding connection is closed');
  });
});

/** Cuts a user's connection; it comes back after `ms`. Resolves with `socket.recovered` then. */
function awayFor(user: ChatUser, ms: number): Promise<boolean> {
  const back = new Promise<boolean>((resolve) =>
    user.socket.once('connect', () => resolve(user.socket.recovered)),
  );
  user.socket.io.reconnectionDelay(ms);
  user.socket.io.reconnectionDelayMax(ms);
  user.socket.io.randomizationFactor(0);
  user.socket.io.engine.close();
  return back;
}

describe('the bundled chat with ADAPTER=redis-streams', { timeout: 120_000 }, () => {
  let kit: Kit;
  const users: ChatUser[] = [];

  /** A member of room `quiet` that gets one message at the start, and nothing after it. */
  let idle: { user: ChatUser; got: string[]; since: number } | undefined;

  before(async () => {
    kit = await launchKit({ env: { ADAPTER: 'redis-streams' } });
    const carol = await chatUser(kit.url, 3, { username: 'carol' });
    const erin = await chatUserAwayFrom(kit.url, [carol.session.node], { username: 'erin' }, 4);
    users.push(carol, erin);
    for (const u of [carol, erin])
      assert.equal((await ask<{ ok?: true }>(u.socket, 'join', 'quiet')).ok, true);
    const got: string[] = [];
    carol.socket.on('room message', (m: { content: string }) => got.push(m.content));
    await ask(erin.socket, 'room message', { room: 'quiet', content: 'first' });
    await waitFor('carol has the first message', () => got.length === 1, 5000);
    idle = { user: carol, got, since: Date.now() };
  });
  after(async () => {
    for (const u of users) u.socket.disconnect();
    await kit?.stop();
  });

  it('recovers a member of a room: its rooms kept, the messages sent while it was away arrive once', async () => {
    const alice = await chatUser(kit.url, 1, { username: 'alice' });
    users.push(alice);
    const bob = await chatUserAwayFrom(kit.url, [alice.session.node], { username: 'bob' }, 2);
    users.push(bob);
    for (const u of [alice, bob])
      assert.equal((await ask<{ ok?: true }>(u.socket, 'join', 'ops')).ok, true);
    const got: string[] = [];
    bob.socket.on('room message', (m: { content: string }) => got.push(m.content));
    // Bob's first room message gives his client an offset to come back from.
    await ask(alice.socket, 'room message', { room: 'ops', content: 'before' });
    await waitFor('bob has the first message', () => got.length === 1, 5000);
    const back = awayFor(bob, 1500);
    for (const content of ['while away 1', 'while away 2', 'while away 3']) {
      assert.equal(
        (await ask<{ ok?: true }>(alice.socket, 'room message', { room: 'ops', content })).ok,
        true,
      );
    }
    assert.equal(await back, true, 'bob recovered');
    await waitFor('the messages bob missed', () => got.length === 4, 5000);
    // Still a member, with no join asked again: a new message reaches him.
    await ask(alice.socket, 'room message', { room: 'ops', content: 'after' });
    await waitFor('the message after', () => got.length === 5, 5000);
    assert.deepEqual(got, ['before', 'while away 1', 'while away 2', 'while away 3', 'after']);
    // Away again with nothing sent meanwhile (socket.io#5419, redis-streams-adapter#39: the same
    // events were replayed on every later recovery): recovered, and nothing comes twice.
    for (let blip = 0; blip < 2; blip++) {
      const again = new Promise<boolean>((resolve) =>
        bob.socket.once('connect', () => resolve(bob.socket.recovered)),
      );
      bob.socket.io.engine.close();
      assert.equal(await again, true, `bob recovered again (${blip + 1})`);
    }
    await pause(500);
    assert.equal(got.length, 5, `nothing replayed twice: ${got.join(', ')}`);
  });

  it('recovers a client idle for 12 s since its last event (redis-streams-adapter#48)', async () => {
    // Reported: a recovery tried more than about 10 s after connecting failed. Carol got one
    // message at the start and nothing since; pings went on (every 2 s) while the other test ran.
    const { user: carol, got, since } = idle as NonNullable<typeof idle>;
    const erin = users.find((u) => u.session.username === 'erin') as ChatUser;
    await pause(Math.max(0, since + 12_000 - Date.now()));
    const back = awayFor(carol, 1000);
    await ask(erin.socket, 'room message', { room: 'quiet', content: 'while away' });
    assert.equal(await back, true, 'carol recovered');
    await waitFor('the message carol missed', () => got.length === 2, 5000);
    await pause(300);
    assert.deepEqual(got, ['first', 'while away']);
  });
});
