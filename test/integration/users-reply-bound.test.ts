// The `users` reply stays small whatever others send: 40 accounts that each sent a user 50
// messages of 2000 characters once made its `users` reply larger than the 4 MB a connection may
// leave unsent (services/node/engine-limits.ts), so that user could never connect again.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { presenceKey } from '../../services/chat/presence-keys.ts';
import {
  ChatStore,
  messageId,
  type PrivateMessage,
  type Session,
  USERS_LISTED,
} from '../../services/chat/store.ts';
import type { Redis } from '../../services/node/redis.ts';
import { chatUser, storedSessions, type UserInfo } from '../harness/chat.ts';
import { ask, client, connected, next } from '../harness/clients.ts';
import { type Kit, kitRedis, launchKit, waitFor } from '../harness/kit.ts';

const SENDERS = 40;
const PER_SENDER = 50;
const CONTENT = 2000;
const REPLY_BOUND = 1024 * 1024;

const ids = (messages: Array<{ id: string }>) => messages.map((m) => m.id);

describe('the `users` reply is bounded', { timeout: 120_000 }, () => {
  let kit: Kit;
  let redis: Redis | undefined;
  const opened: Socket[] = [];

  before(async () => {
    kit = await launchKit({ nodes: 1 });
    redis = await kitRedis(kit);
  });
  after(async () => {
    for (const socket of opened) socket.disconnect();
    await redis?.quit();
    await kit?.stop();
  });

  it('after 40 senders × 50 messages of 2000 characters, the victim connects and pages', async () => {
    const victim = await chatUser(kit.url, 1, { username: 'victim' });
    opened.push(victim.socket);
    victim.socket.disconnect();
    const me = victim.session.userID;

    // Written through the store the nodes use (its key layout and indexes), not through sockets:
    // 2000 messages at the per-socket rate limit would take minutes.
    const store = new ChatStore(redis as Redis);
    const start = Date.now() - 60_000;
    const sent = await Promise.all(
      Array.from({ length: SENDERS }, async (_, s) => {
        const sender = store.newSession(`sender${s}`);
        await store.touch(sender);
        const messages: PrivateMessage[] = [];
        // Sender s wrote after sender s - 1: by recency the conversations are 39, 38, … 0.
        for (let i = 0; i < PER_SENDER; i++) {
          const ts = start + s * PER_SENDER + i;
          const content = `${s}:${i}:`.padEnd(CONTENT, 'x');
          const message = { id: messageId(ts), content, from: sender.userID, to: me, ts };
          await store.savePrivateMessage(message);
          messages.push(message);
        }
        return { userID: sender.userID, messages };
      }),
    );

    // Opened here rather than through chatUser, so that a connection the node keeps closing is
    // still disconnected by `after` instead of retrying for ever.
    const socket = client(kit.url, { net: 1, auth: { sessionID: victim.session.sessionID } });
    opened.push(socket);
    const reply = next<UserInfo[]>(socket, 'users');
    await connected(socket);
    const users = await reply;
    const bytes = Buffer.byteLength(JSON.stringify(users));
    console.log(`users reply after ${SENDERS} × ${PER_SENDER} messages: ${bytes} bytes`);
    assert.ok(bytes < REPLY_BOUND, `users reply of ${bytes} bytes`);

    const carried = sent.map(({ userID, messages }) => {
      const listed = users.find((u) => u.userID === userID);
      assert.ok(listed, 'every sender is listed');
      // Whatever a user carries is the latest of its conversation, oldest first.
      assert.deepEqual(
        ids(listed.messages),
        ids(messages.slice(messages.length - listed.messages.length)),
      );
      return listed.messages.length;
    });
    assert.equal(carried.at(-1), PER_SENDER, 'the most recent conversation carries its latest 50');
    assert.equal(carried[0], 0, 'the oldest conversation carries none');
    // Newest conversations first: a conversation carries messages only if every newer one is full.
    carried.forEach((count, s) => {
      if (count > 0)
        assert.ok(
          carried.slice(s + 1).every((n) => n === PER_SENDER),
          `sender ${s}`,
        );
    });

    for (const { userID, messages } of [sent[0], sent[SENDERS / 2], sent[SENDERS - 1]]) {
      const page = await ask<{ ok?: true; error?: string; messages?: PrivateMessage[] }>(
        socket,
        'messages',
        { with: userID },
      );
      assert.equal(page.ok, true, page.error);
      assert.deepEqual(ids(page.messages ?? []), ids(messages.slice(-PER_SENDER).reverse()));
    }
  });

  // A reconnect storm (every client of a restarted kit at once) is paid per connect: the `users`
  // reply once asked Redis three commands per listed user (its name, its instances, its grace),
  // 1,540 commands a connect at 500 users, and 500 clients connecting at once kept four nodes
  // busy for 7.8 s. Names are kept by the node and presence is one script: what Redis reads per
  // connect is now about one user id per listed user.
  it('a connect costs Redis one id per listed user, however many users it lists', async () => {
    const known = await storedSessions(redis as Redis, USERS_LISTED, 'known');
    const connect = async (session: Session) => {
      const socket = client(kit.url, { net: 2, auth: { sessionID: session.sessionID } });
      opened.push(socket);
      const reply = next<UserInfo[]>(socket, 'users');
      await connected(socket);
      return { socket, users: await reply };
    };
    const bytesRead = async () =>
      Number(/total_net_input_bytes:(\d+)/.exec(await (redis as Redis).info('stats'))?.[1]);

    // The first reply makes the node read every name; the one user stays online.
    const online = await connect(known[0] as Session);
    const CONNECTS = 5;
    const before = await bytesRead();
    let users: UserInfo[] = [];
    for (const session of known.slice(1, 1 + CONNECTS)) {
      const other = await connect(session);
      users = other.users;
      other.socket.disconnect();
    }
    const perConnect = ((await bytesRead()) - before) / CONNECTS;
    online.socket.disconnect();
    console.log(
      `Redis read ${Math.round(perConnect)} bytes per connect, ${USERS_LISTED} users listed`,
    );

    assert.equal(users.length, USERS_LISTED);
    const listed = new Map(users.map((u) => [u.userID, u]));
    const first = listed.get((known[0] as Session).userID);
    assert.equal(first?.username, 'known0');
    assert.equal(first?.connected, true, 'the user still connected is listed online');
    const never = listed.get((known.at(-1) as Session).userID);
    assert.equal(never?.username, `known${USERS_LISTED - 1}`);
    assert.equal(never?.connected, false, 'a user never connected is listed offline');

    // A user whose last socket went is still online during its grace (not yet announced gone).
    const leaving = known[CONNECTS] as Session;
    const data = redis as Redis;
    await waitFor('the last one leaving, with no socket left', async () => {
      const [score, sockets] = await Promise.all([
        data.zScore(presenceKey.leaving, leaving.userID),
        data.exists(presenceKey.userInstances(leaving.userID)),
      ]);
      return score !== null && sockets === 0;
    });
    const after = await connect(known[CONNECTS + 1] as Session);
    after.socket.disconnect();
    const inGrace = after.users.find((u) => u.userID === leaving.userID);
    assert.equal(inGrace?.connected, true, 'a user in its grace is listed online');
    // A user id is 36 characters (about 43 bytes as a command's argument); a name, an EXISTS and
    // a ZSCORE per listed user were about 220 bytes.
    assert.ok(perConnect < 80 * USERS_LISTED, `${Math.round(perConnect)} bytes per connect`);
  });
});
