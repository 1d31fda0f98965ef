// Bounded chat replies: `users` and `join` carry at most the latest 50 messages, and older ones
// come page by page through `messages` and `room history`, whatever the history holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { type ChatUser, chatUser } from '../harness/chat.ts';
import { ask } from '../harness/clients.ts';
import { useKit } from '../harness/kit.ts';

interface Message {
  id: string;
  content: string;
}
interface Answer {
  ok?: true;
  error?: string;
  message?: Message;
  messages?: Message[];
  history?: Message[];
}

const PAGE = 50;

/** Sends at the pace the per-socket rate limit allows, waiting out a refusal. */
async function sendAll(socket: Socket, event: string, payloads: object[]): Promise<Message[]> {
  const sent: Message[] = [];
  for (const payload of payloads) {
    for (;;) {
      const answer = await ask<Answer>(socket, event, payload);
      if (answer.message) {
        sent.push(answer.message);
        break;
      }
      assert.match(answer.error ?? '', /^rate limited/);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return sent;
}

/** Every page of an older-messages request, newest first, until an empty one. */
async function allPages(
  socket: Socket,
  event: string,
  request: object,
  field: 'messages' | 'history',
  from?: string,
): Promise<Message[][]> {
  const pages: Message[][] = [];
  let before = from;
  for (;;) {
    const answer = await ask<Answer>(socket, event, { ...request, before });
    assert.equal(answer.ok, true, answer.error);
    const page = answer[field] ?? [];
    pages.push(page);
    if (page.length === 0) return pages;
    before = page.at(-1)?.id;
  }
}

const ids = (messages: Message[]) => messages.map((m) => m.id);

describe('bounded chat replies and paging', { timeout: 120_000 }, () => {
  const opened: ChatUser[] = [];
  const kit = useKit({ clients: opened });

  it('`users` carries the latest 50 private messages; `messages` pages through the rest', async () => {
    const alice = await chatUser(kit.url, 1, { username: 'alice' });
    const bob = await chatUser(kit.url, 2, { username: 'bob' });
    const carol = await chatUser(kit.url, 3, { username: 'carol' });
    opened.push(alice, bob, carol);
    const [fromAlice, fromBob] = await Promise.all([
      sendAll(
        alice.socket,
        'private message',
        Array.from({ length: 70 }, (_, i) => ({ content: `a${i}`, to: bob.session.userID })),
      ),
      sendAll(
        bob.socket,
        'private message',
        Array.from({ length: 50 }, (_, i) => ({ content: `b${i}`, to: alice.session.userID })),
      ),
    ]);
    await sendAll(carol.socket, 'private message', [{ content: 'hi', to: alice.session.userID }]);
    const all = [...fromAlice, ...fromBob].sort((x, y) => (x.id < y.id ? -1 : 1));

    alice.socket.disconnect();
    const again = await chatUser(kit.url, 1, { sessionID: alice.session.sessionID });
    opened.push(again);
    const withBob = again.users.find((u) => u.userID === bob.session.userID);
    assert.deepEqual(
      ids(withBob?.messages ?? []),
      ids(all.slice(-PAGE)),
      'latest 50, oldest first',
    );
    const withCarol = again.users.find((u) => u.userID === carol.session.userID);
    assert.deepEqual(
      withCarol?.messages.map((m) => m.content),
      ['hi'],
    );
    const bytes = JSON.stringify(again.users).length;
    console.log(`users reply after ${all.length + 1} messages: ${bytes} bytes`);

    const pages = await allPages(
      again.socket,
      'messages',
      { with: bob.session.userID },
      'messages',
    );
    assert.deepEqual(
      pages.map((p) => p.length),
      [50, 50, 20, 0],
    );
    assert.deepEqual(ids(pages.flat()), ids([...all].reverse()), 'newest first, each once');
    const older = await ask<Answer>(again.socket, 'messages', {
      with: bob.session.userID,
      before: all[PAGE]?.id,
    });
    assert.deepEqual(ids(older.messages ?? []), ids(all.slice(0, PAGE).reverse()));
    // Nothing leaks from a conversation the asker is not part of.
    const stranger = await ask<Answer>(carol.socket, 'messages', { with: bob.session.userID });
    assert.deepEqual(stranger.messages, []);
  });

  it('`join` answers the latest 50 room messages; `room history` pages, for members only', async () => {
    const speaker = await chatUser(kit.url, 10, { username: 'speaker' });
    const late = await chatUser(kit.url, 11, { username: 'late' });
    opened.push(speaker, late);
    assert.equal((await ask<Answer>(speaker.socket, 'join', 'hall')).ok, true);
    // Stored in id order: by time, then a random suffix (two in one millisecond may swap).
    const sent = (
      await sendAll(
        speaker.socket,
        'room message',
        Array.from({ length: 65 }, (_, i) => ({ room: 'hall', content: `r${i}` })),
      )
    ).sort((x, y) => (x.id < y.id ? -1 : 1));

    const refused = await ask<Answer>(late.socket, 'room history', { room: 'hall' });
    assert.equal(refused.error, 'join the room first');
    const joined = await ask<Answer>(late.socket, 'join', 'hall');
    assert.deepEqual(ids(joined.history ?? []), ids(sent.slice(-PAGE)), 'latest 50, oldest first');
    const pages = await allPages(
      late.socket,
      'room history',
      { room: 'hall' },
      'history',
      joined.history?.[0]?.id,
    );
    assert.deepEqual(
      pages.map((p) => p.length),
      [15, 0],
    );
    assert.deepEqual(ids(pages.flat()), ids(sent.slice(0, 15).reverse()));
  });

  it('answers malformed paging requests with an error', async () => {
    const user = await chatUser(kit.url, 20, { username: 'prober' });
    opened.push(user);
    await ask(user.socket, 'join', 'probe');
    for (const [event, payload] of [
      ['messages', null],
      ['messages', { with: 'x'.repeat(65) }],
      ['messages', { with: user.session.userID, before: ['a'] }],
      ['room history', 'probe'],
      ['room history', { room: 'probe', before: 'x'.repeat(65) }],
      ['room history', { room: '../etc' }],
    ] as const) {
      const answer = await ask<Answer>(user.socket, event, payload);
      assert.equal(typeof answer.error, 'string', `${event} ${JSON.stringify(payload)}`);
    }
  });
});
