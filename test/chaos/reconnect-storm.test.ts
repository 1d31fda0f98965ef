// Every client of a kit at once: what a restarted kit, an nginx reload that cut the WebSockets,
// or a network blip brings. 500 chat users with sessions reconnect in the same instant; each
// must get its `users` without being dropped or refused, and no node may be taken for hung and
// killed, watched for as long as the supervisor's silence limit and 2 s more (the kit once spent
// 1,540 Redis commands on each connect's `users`, and killed every node slow to answer its
// probe, which threw its clients onto the others). It prints how long the storm took to settle.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { SILENCE_LIMIT_MS } from '../../scripts/kit/liveness.ts';
import type { Session } from '../../services/chat/store.ts';
import { USERS_LISTED } from '../../services/chat/store.ts';
import { storedSessions, type UserInfo } from '../harness/chat.ts';
import { client, closeAll } from '../harness/clients.ts';
import { type Kit, kitRedis, launchKit } from '../harness/kit.ts';

const USERS = 500;
/** Source networks the users come from: nginx's ip_hash spreads them over the nodes. */
const NETS = 200;

describe('a reconnect storm', { timeout: 180_000 }, () => {
  let kit: Kit;
  const sockets: Socket[] = [];

  before(async () => {
    kit = await launchKit();
  });
  after(async () => {
    closeAll(sockets);
    await kit?.stop();
  });

  it(`${USERS} users reconnecting at once all get their users list; no node is killed`, async () => {
    // The users exist already (a reconnect resumes its session), written as the nodes write them.
    const redis = await kitRedis(kit);
    let sessions: Session[];
    try {
      sessions = await storedSessions(redis, USERS, 'storm');
    } finally {
      await redis.quit();
    }
    const nodes = kit.nodePorts.map((port) => `node-${port}`);
    const pids = nodes.map((node) => kit.pid(node));

    const started = Date.now();
    let disconnects = 0;
    let refusals = 0;
    const lists = sessions.map((session, i) => {
      const socket = client(kit.url, {
        net: 1 + (i % NETS),
        auth: { sessionID: session.sessionID },
      });
      sockets.push(socket);
      socket.on('disconnect', () => {
        disconnects += 1;
      });
      socket.on('connect_error', () => {
        refusals += 1;
      });
      return new Promise<number>((resolve) => {
        socket.once('users', (users: UserInfo[]) => resolve(users.length));
      });
    });
    let deadline: NodeJS.Timeout | undefined;
    const listed = await Promise.race([
      Promise.all(lists),
      new Promise<never>((_, reject) => {
        deadline = setTimeout(() => reject(new Error('not every users list within 60 s')), 60_000);
      }),
    ]).finally(() => clearTimeout(deadline));
    const settledMs = Date.now() - started;
    // A node the supervisor took for hung would be killed only after this long of silence.
    await new Promise((r) => setTimeout(r, SILENCE_LIMIT_MS + 2_000));
    console.log(
      `${USERS} users reconnecting at once over ${nodes.length} nodes: every users list in ` +
        `${settledMs} ms; ${disconnects} disconnects, ${refusals} refused by ${SILENCE_LIMIT_MS / 1000 + 2} s later`,
    );

    assert.ok(
      listed.every((n) => n === Math.min(USERS, USERS_LISTED)),
      'every list holds every user',
    );
    assert.equal(disconnects, 0, 'no client was dropped');
    assert.equal(refusals, 0, 'no connection was refused');
    assert.deepEqual(
      nodes.map((node) => kit.pid(node)),
      pids,
      'no node was killed and restarted',
    );
  });
});
