// Faults under load: a few hundred chat users spread over four nodes while a node is killed,
// Redis restarts five times, nginx reloads and the nodes restart one by one. Each scenario
// prints its figures and leaves the kit whole for the next.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chatUser } from '../harness/chat.ts';
import { ask } from '../harness/clients.ts';
import { byNode, crowd, type Member, totalDisconnects } from '../harness/crowd.ts';
import { type Kit, launchKit, runDoor, waitFor } from '../harness/kit.ts';
import { type TestRedis, testRedis } from '../harness/redis.ts';

const NETS = 40;
const PER_NET = 6;

async function statuses(kit: Kit, path: string): Promise<number[]> {
  return Promise.all(
    kit.nodePorts.map((p) =>
      fetch(`http://127.0.0.1:${p}${path}`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.status,
        () => 0,
      ),
    ),
  );
}

async function allReady(kit: Kit): Promise<void> {
  await waitFor(
    'every node ready',
    async () => (await statuses(kit, '/readyz')).every((s) => s === 200),
    20_000,
  );
}

async function allConnected(members: Member[], timeoutMs = 15_000): Promise<void> {
  await waitFor(
    'every client connected',
    () => members.every((m) => m.socket.connected),
    timeoutMs,
  );
}

describe('faults under load', { timeout: 300_000 }, () => {
  let redis: TestRedis;
  let kit: Kit;
  let members: Member[] = [];

  before(async () => {
    redis = await testRedis();
    await redis.start();
    kit = await launchKit({ env: { REDIS_URL: redis.url } });
    members = await crowd(kit.url, NETS, PER_NET);
    const spread = Object.fromEntries([...byNode(members)].map(([n, ms]) => [n, ms.length]));
    console.log(`${members.length} clients:`, spread);
    assert.ok(Object.keys(spread).length >= 3);
  });
  after(async () => {
    for (const m of members) m.socket.disconnect();
    await kit?.stop();
    await redis?.cleanup();
  });

  it('SIGKILL of a node: its clients are all back within 10 s, the others never notice', async () => {
    const [victimNode, victims] = [...byNode(members)].sort(
      (a, b) => b[1].length - a[1].length,
    )[0] as [string, Member[]];
    const others = members.filter((m) => m.node !== victimNode);
    const othersBefore = totalDisconnects(others);
    const killedAt = Date.now();
    process.kill(kit.pid(victimNode), 'SIGKILL');
    await waitFor('the victims to notice', () => victims.every((m) => m.disconnects > 0), 10_000);
    await allConnected(victims, 10_000);
    const backMs = Date.now() - killedAt;
    console.log(
      `SIGKILL ${victimNode}: ${victims.length} clients reconnected within ${backMs} ms ` +
        `(longest gap ${Math.max(...victims.map((m) => m.longestDownMs))} ms); ` +
        `${totalDisconnects(others) - othersBefore} disconnects among ${others.length} others`,
    );
    assert.ok(backMs < 10_000);
    assert.equal(
      totalDisconnects(others),
      othersBefore,
      'a client of another node was disconnected',
    );
    await allReady(kit);
  });

  it('five Redis restarts: no node exits, /readyz is 503 meanwhile, delivery resumes within 5 s', async () => {
    const pids = kit.nodePorts.map((p) => kit.pid(`node-${p}`));
    // One listener per node; the probe is emitted on the first node and must reach them all.
    const listeners = [...byNode(members).values()].map((ms) => ms[0] as Member);
    const emitter = `http://127.0.0.1:${kit.nodePorts[0]}/api/emit`;
    const figures: number[] = [];
    for (let round = 1; round <= 5; round++) {
      await redis.kill();
      await waitFor(
        'every node to report 503',
        async () => (await statuses(kit, '/readyz')).every((s) => s === 503),
        10_000,
      );
      await redis.start();
      const answeredAt = Date.now();
      const seen = listeners.map(() => new Set<number>());
      listeners.forEach((l, i) => {
        l.socket.on('probe', (k: number) => seen[i]?.add(k));
      });
      let resumedMs = -1;
      for (let k = 0; Date.now() - answeredAt < 15_000; k++) {
        await fetch(emitter, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${kit.emitToken()}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ event: 'probe', data: k }),
        }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 50));
        if ([...(seen[0] ?? [])].some((p) => seen.every((s) => s.has(p)))) {
          resumedMs = Date.now() - answeredAt;
          break;
        }
      }
      for (const l of listeners) l.socket.off('probe');
      figures.push(resumedMs);
      assert.ok(
        resumedMs >= 0 && resumedMs < 5000,
        `round ${round}: delivery resumed after ${resumedMs} ms`,
      );
      await allReady(kit);
    }
    console.log(`Redis restarts: cross-node delivery back after ${figures.join(', ')} ms`);
    assert.deepEqual(
      kit.nodePorts.map((p) => kit.pid(`node-${p}`)),
      pids,
      'a node exited',
    );
    await allConnected(members);
  });

  it('reload.sh with every client connected: zero disconnects', async () => {
    const before = totalDisconnects(members);
    const reload = await runDoor('reload', kit.env);
    assert.equal(reload.code, 0, reload.stderr);
    await new Promise((r) => setTimeout(r, 2000));
    const lost = totalDisconnects(members) - before;
    console.log(`reload.sh: ${lost} disconnects among ${members.length} clients`);
    assert.equal(lost, 0);
  });

  it('restart.sh under acknowledged room messages: none lost, all connected at the end', async () => {
    for (const m of members) m.longestDownMs = 0;
    const ROOMS = 20;
    // Every fourth member sends; consecutive groups of four share a room, so each room has senders.
    const room = (i: number) => `chaos-${Math.floor(i / 4) % ROOMS}`;
    await Promise.all(members.map((m, i) => ask(m.socket, 'join', room(i))));
    const senders = members.filter((_, i) => i % 4 === 0);
    const acked = new Map<string, string>(); // id -> room
    let failed = 0;
    let sending = true;
    const loops = senders.map(async (m, n) => {
      const i = members.indexOf(m);
      for (let k = 0; sending; k++) {
        try {
          const answer = (await m.socket
            .timeout(10_000)
            .emitWithAck('room message', { room: room(i), content: `${n}:${k}` })) as {
            ok?: boolean;
            message?: { id: string };
          };
          if (answer.ok && answer.message) acked.set(answer.message.id, room(i));
          else failed += 1;
        } catch {
          failed += 1;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    });
    await new Promise((r) => setTimeout(r, 1000));
    const restart = await runDoor('restart', kit.env);
    assert.equal(restart.code, 0, restart.stderr);
    process.stdout.write(restart.stdout);
    await new Promise((r) => setTimeout(r, 1000));
    sending = false;
    await Promise.all(loops);
    await allConnected(members);

    // Auditors read the rooms back, four at once: join answers with the latest 50, older ones
    // page in, newest first. Each is paced under the per-socket rate limit (10 events/s).
    const stored = new Set<string>();
    const rooms = [...new Set(acked.values())];
    const AUDITORS = 4;
    await Promise.all(
      Array.from({ length: AUDITORS }, async (_, a) => {
        const reader = await chatUser(kit.url, 200 + a, { username: `auditor${a}` });
        const paced = async <T>(event: string, payload: unknown) => {
          await new Promise((r) => setTimeout(r, 110));
          return (await ask(reader.socket, event, payload)) as T;
        };
        for (const name of rooms.filter((_, i) => i % AUDITORS === a)) {
          let page = (await paced<{ history: Array<{ id: string }> }>('join', name)).history;
          while (page.length > 0) {
            for (const m of page) stored.add(m.id);
            const oldest = page.map((m) => m.id).sort()[0];
            page = (
              await paced<{ history: Array<{ id: string }> }>('room history', {
                room: name,
                before: oldest,
              })
            ).history;
          }
        }
        reader.socket.disconnect();
      }),
    );
    const lost = [...acked.keys()].filter((id) => !stored.has(id));
    const longest = Math.max(...members.map((m) => m.longestDownMs));
    console.log(
      `restart.sh: ${acked.size} acknowledged room messages, ${lost.length} lost, ${failed} not acknowledged; ` +
        `longest time a client was without a connection: ${longest} ms`,
    );
    assert.ok(acked.size > 100, 'too few messages were sent to prove anything');
    assert.equal(lost.length, 0);
    assert.ok(members.every((m) => m.socket.connected));
  });
});
