// The bundled chat across nodes: private messages, sessions that survive a move to another node,
// presence that only ends with a user's last socket, rooms with history, and the outside emitter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChatUser, chatUser, chatUserAwayFrom } from '../harness/chat.ts';
import { ask, client, collect, connected, next } from '../harness/clients.ts';
import { runDoor, useKit, waitFor } from '../harness/kit.ts';

type Ack = {
  ok?: true;
  error?: string;
  message?: Record<string, unknown>;
  history?: Array<{ id: string; content: string }>;
};

describe('chat across nodes', () => {
  const opened: ChatUser[] = [];
  const track = <T extends ChatUser>(user: T): T => {
    opened.push(user);
    return user;
  };
  const kit = useKit({ clients: opened });

  it('delivers a private message to the other user on another node and echoes it to the sender', async () => {
    const alice = track(await chatUser(kit.url, 1, { username: 'alice' }));
    const bob = track(
      await chatUserAwayFrom(kit.url, [alice.session.node], { username: 'bob' }, 2),
    );
    assert.notEqual(alice.session.node, bob.session.node);

    const atBob = next<Record<string, unknown>>(bob.socket, 'private message');
    const echo = next<Record<string, unknown>>(alice.socket, 'private message');
    const ack = await ask<Ack>(alice.socket, 'private message', {
      content: 'hi bob',
      to: bob.session.userID,
    });
    assert.equal(ack.ok, true);
    const message = await atBob;
    assert.deepEqual(await echo, message);
    assert.equal(message.content, 'hi bob');
    assert.equal(message.from, alice.session.userID);
    assert.equal(message.to, bob.session.userID);
    assert.equal(typeof message.id, 'string');
    assert.equal(typeof message.ts, 'number');
  });

  it('resumes a session from another node with the same identity and history', async () => {
    const carol = track(await chatUser(kit.url, 20, { username: 'carol' }));
    const dave = track(
      await chatUserAwayFrom(kit.url, [carol.session.node], { username: 'dave' }, 21),
    );
    await ask(carol.socket, 'private message', { content: 'remember me', to: dave.session.userID });
    carol.socket.disconnect();

    const again = track(
      await chatUserAwayFrom(
        kit.url,
        [carol.session.node],
        { sessionID: carol.session.sessionID },
        30,
      ),
    );
    assert.notEqual(again.session.node, carol.session.node, 'must reconnect to another node');
    assert.equal(again.session.userID, carol.session.userID);
    assert.equal(again.session.username, 'carol');
    const withDave = again.users.find((u) => u.userID === dave.session.userID);
    assert.deepEqual(
      withDave?.messages.map((m) => m.content),
      ['remember me'],
    );
    assert.equal(withDave?.connected, true);
  });

  it('reports a user disconnected only when its last socket, on any node, is gone', async () => {
    const observer = track(await chatUser(kit.url, 40, { username: 'observer' }));
    const erin = await chatUser(kit.url, 41, { username: 'erin' });
    const erin2 = await chatUserAwayFrom(
      kit.url,
      [erin.session.node],
      { sessionID: erin.session.sessionID },
      42,
    );
    assert.equal(erin2.session.userID, erin.session.userID);
    const gone = collect<string>(observer.socket, 'user disconnected');

    erin.socket.disconnect();
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(
      !gone.includes(erin.session.userID),
      'reported gone while a socket on another node remains',
    );

    erin2.socket.disconnect();
    // Announced after a grace of a few seconds (services/chat/presence.ts), so a client moving
    // to another node is never reported gone.
    await waitFor('user disconnected', () => gone.includes(erin.session.userID), 10_000);
  });

  it('carries room messages across nodes, answers join with history, and a reconnect misses nothing', async () => {
    const members = [
      track(await chatUser(kit.url, 50, { username: 'm1' })),
      track(await chatUser(kit.url, 51, { username: 'm2' })),
      track(await chatUser(kit.url, 52, { username: 'm3' })),
    ];
    const outsider = track(await chatUser(kit.url, 53, { username: 'outsider' }));
    assert.ok(new Set(members.map((m) => m.session.node)).size >= 2, 'members must span nodes');
    for (const m of members) assert.equal((await ask<Ack>(m.socket, 'join', 'lobby')).ok, true);
    const stray = collect(outsider.socket, 'room message');

    const seen = members.map((m) =>
      next<{ content: string; room: string }>(m.socket, 'room message'),
    );
    const sent = await ask<Ack>(members[0]?.socket as never, 'room message', {
      room: 'lobby',
      content: 'one',
    });
    assert.equal(sent.ok, true);
    for (const message of await Promise.all(seen))
      assert.deepEqual([message.room, message.content], ['lobby', 'one']);

    const late = track(await chatUser(kit.url, 54, { username: 'late' }));
    const joined = await ask<Ack>(late.socket, 'join', 'lobby');
    assert.deepEqual(
      joined.history?.map((m) => m.content),
      ['one'],
    );

    // m3 loses its connection; messages sent meanwhile come back through history on re-join.
    const m3 = members[2] as ChatUser;
    const received = new Map<string, string>();
    m3.socket.on('room message', (m: { id: string; content: string }) =>
      received.set(m.id, m.content),
    );
    const back = next(m3.socket, 'connect', 10_000);
    m3.socket.io.engine.close();
    for (const content of ['two', 'three']) {
      await ask(members[0]?.socket as never, 'room message', { room: 'lobby', content });
    }
    await back;
    const rejoin = await ask<Ack>(m3.socket, 'join', 'lobby');
    for (const m of rejoin.history ?? []) received.set(m.id, m.content);
    const contents = [...received.values()];
    assert.ok(contents.includes('two') && contents.includes('three'), `missed: ${contents}`);
    assert.equal(stray.length, 0, 'a non-member received a room message');
  });

  it('answers every bad payload with an error and stays healthy', async () => {
    const pids = kit.nodePorts.map((p) => kit.pid(`node-${p}`));
    const frank = track(await chatUser(kit.url, 60, { username: 'frank' }));
    const bad: Array<[string, unknown]> = [
      ['private message', null],
      ['private message', 'text'],
      ['private message', { content: 42, to: frank.session.userID }],
      ['private message', { content: 'x'.repeat(100_000), to: frank.session.userID }],
      ['private message', { content: 'hello', to: 'no-such-user' }],
      ['private message', { content: 'hello', to: { $ne: null } }],
      ['join', { name: 'lobby' }],
      ['join', null],
      ['join', 'x'.repeat(65)],
      ['join', '../../etc'],
      ['leave', 7],
      ['room message', { room: ['lobby'], content: 'hi' }],
      ['room message', { room: 'not-joined', content: 'hi' }],
      ['room message', { room: 'lobby', content: '' }],
    ];
    for (const [event, payload] of bad) {
      const answer = await ask<Ack>(frank.socket, event, payload);
      assert.equal(
        typeof answer.error,
        'string',
        `${event} ${JSON.stringify(payload)?.slice(0, 60)}`,
      );
      assert.equal(answer.ok, undefined);
    }
    // Events without an acknowledgement, and unknown events, are ignored without harm.
    frank.socket.emit('private message', null);
    frank.socket.emit('no such event', { a: 1 });
    assert.equal((await ask<Ack>(frank.socket, 'join', 'still-fine')).ok, true);
    for (const port of kit.nodePorts) {
      const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as {
        status: string;
      };
      assert.equal(health.status, 'ok');
    }
    assert.deepEqual(
      kit.nodePorts.map((p) => kit.pid(`node-${p}`)),
      pids,
      'a node was restarted',
    );
  });

  it('refuses a handshake without a valid username', async () => {
    for (const auth of [
      {},
      { username: '   ' },
      { username: 'x'.repeat(33) },
      { sessionID: 'nope' },
    ]) {
      const socket = client(kit.url, { net: 70, auth, reconnection: false });
      await assert.rejects(connected(socket), /invalid username/);
      socket.disconnect();
    }
  });

  it('rate-limits a flooding socket with an error acknowledgement', async () => {
    const flooder = track(await chatUser(kit.url, 71, { username: 'flooder' }));
    const answers = await Promise.all(
      Array.from({ length: 60 }, () => ask<Ack>(flooder.socket, 'join', 'flood')),
    );
    const limited = answers.filter((a) => a.error?.startsWith('rate limited'));
    assert.ok(limited.length > 0, 'no event was rate limited');
    assert.ok(
      answers.some((a) => a.ok),
      'the first events must pass',
    );
  });

  it('reaches clients on every node from outside, through scripts/emit', async () => {
    const listeners = await Promise.all(
      [80, 81, 82, 83, 84, 85, 86, 87].map((net) =>
        chatUser(kit.url, net, { username: `l${net}` }),
      ),
    );
    listeners.forEach(track);
    assert.ok(new Set(listeners.map((l) => l.session.node)).size >= 3);
    const got = listeners.map((l) => next<{ text: string }>(l.socket, 'announcement', 10_000));
    const emitted = await runDoor('emit', kit.env, [
      'announcement',
      '{"text":"maintenance at noon"}',
    ]);
    assert.equal(emitted.code, 0, emitted.stderr);
    for (const payload of await Promise.all(got)) assert.equal(payload.text, 'maintenance at noon');

    const inRoom = listeners.slice(0, 3);
    for (const l of inRoom) await ask(l.socket, 'join', 'ops');
    const others = listeners.slice(3).map((l) => collect(l.socket, 'ops notice'));
    const roomGot = inRoom.map((l) => next(l.socket, 'ops notice', 10_000));
    const toRoom = await runDoor('emit', kit.env, [
      'ops notice',
      '"deploying"',
      '--room',
      'room:ops',
    ]);
    assert.equal(toRoom.code, 0, toRoom.stderr);
    await Promise.all(roomGot);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(others.flat().length, 0);
  });
});
