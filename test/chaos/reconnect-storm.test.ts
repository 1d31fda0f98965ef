// Every client of a kit at once: what a restarted kit, an nginx reload that cut the WebSockets,
// or a network blip brings. 500 chat users with sessions reconnect in the same instant; each
// must get its `users` without being dropped, and no node may be taken for hung and killed (the
// kit once spent 1,540 Redis commands on each connect's `users`, and killed every busy node,
// which threw its clients onto the others). It prints how long the storm took to settle.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import type { Socket } from 'socket.io-client';
import { ChatStore, type Session } from '../../services/chat/store.ts';
import type { Redis } from '../../services/node/redis.ts';
import type { UserInfo } from '../harness/chat.ts';
import { client, closeAll } from '../harness/clients.ts';
import { type Kit, launchKit } from '../harness/kit.ts';

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
    const password = readFileSync(join(kit.runDir, 'redis', 'password'), 'utf8').trim();
    const redis = createClient({ url: `redis://127.0.0.1:${kit.redisPort}`, password }) as Redis;
    await redis.connect();
    const store = new ChatStore(redis);
    const sessions: Session[] = await Promise.all(
      Array.from({ length: USERS }, async (_, i) => {
        const session = store.newSession(`storm${i}`);
        await store.touch(session);
        return session;
      }),
    );
    await redis.quit();
    const nodes = kit.nodePorts.map((port) => `node-${port}`);
    const pids = nodes.map((node) => kit.pid(node));

    const started = Date.now();
    let disconnects = 0;
    const listed = await Promise.all(
      sessions.map((session, i) => {
        const socket = client(kit.url, {
          net: 1 + (i % NETS),
          auth: { sessionID: session.sessionID },
        });
        sockets.push(socket);
        socket.on('disconnect', () => {
          disconnects += 1;
        });
        return new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`storm${i}: no users in 60 s`)), 60_000);
          socket.once('users', (users: UserInfo[]) => {
            clearTimeout(timer);
            resolve(users.length);
          });
        });
      }),
    );
    const settledMs = Date.now() - started;
    console.log(
      `${USERS} users reconnecting at once over ${nodes.length} nodes: every users list in ` +
        `${settledMs} ms, ${disconnects} disconnects`,
    );

    assert.ok(
      listed.every((n) => n >= USERS),
      'every list holds every user',
    );
    assert.equal(disconnects, 0, 'no client was dropped');
    assert.deepEqual(
      nodes.map((node) => kit.pid(node)),
      pids,
      'no node was killed and restarted',
    );
  });
});
