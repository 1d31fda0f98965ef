// A hung node (SIGSTOP) under 200 chat users must not hold up anyone else: a new user on a
// healthy node gets its `session` and `users` at once, because presence lives in Redis, not in a
// question to every node; the supervisor replaces the silent node and its clients come back; and
// the users it held stop counting as online within 30 s.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ChatUser, chatUserAwayFrom, chatUserOn } from '../harness/chat.ts';
import { client, collect, next } from '../harness/clients.ts';
import { byNode, crowd, type Member } from '../harness/crowd.ts';
import { type Kit, launchKit, waitFor } from '../harness/kit.ts';

describe('a hung node', { timeout: 120_000 }, () => {
  let kit: Kit;
  let stopped: number | undefined;
  const opened: ChatUser[] = [];
  let members: Member[] = [];

  before(async () => {
    kit = await launchKit();
    members = await crowd(kit.url, 50, 4, 'crowd');
  });
  after(async () => {
    if (stopped !== undefined) resume(stopped);
    for (const user of opened) user.socket.disconnect();
    for (const m of members) m.socket.disconnect();
    await kit?.stop();
  });

  /** SIGCONT, unless the supervisor has killed the hung node meanwhile. */
  function resume(pid: number): void {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {}
  }

  it('serves new users elsewhere at once, and is replaced; its clients come back', async () => {
    const victim = `node-${kit.nodePorts[0]}`;
    const held = byNode(members).get(victim) ?? [];
    assert.ok(held.length > 0, 'no crowd member on the victim');
    // Find, while every node answers, a source network that nginx sends elsewhere.
    const probe = await chatUserAwayFrom(kit.url, [victim], { username: 'probe' }, 1);
    probe.socket.disconnect();
    const watcher = await chatUserAwayFrom(kit.url, [victim], { username: 'watcher' }, 30);
    opened.push(watcher);

    stopped = kit.pid(victim);
    process.kill(stopped, 'SIGSTOP');
    try {
      const started = Date.now();
      const socket = client(kit.url, {
        net: probe.net,
        auth: { username: 'newcomer' },
        reconnection: false,
      });
      const session = next<{ node: string; userID: string }>(socket, 'session', 10_000);
      const users = next<Array<{ userID: string; connected: boolean }>>(socket, 'users', 10_000);
      const announced = next<{ userID: string }>(watcher.socket, 'user connected', 10_000);
      // Awaited in turn below; one left behind by an earlier failure must not go unhandled.
      for (const later of [users, announced]) later.catch(() => {});
      try {
        const s = await session;
        const sessionMs = Date.now() - started;
        const list = await users;
        const usersMs = Date.now() - started;
        const seen = await announced;
        console.log(
          `${victim} stopped: newcomer on ${s.node} got session after ${sessionMs} ms, ` +
            `users after ${usersMs} ms; watcher told after ${Date.now() - started} ms`,
        );
        assert.notEqual(s.node, victim);
        assert.ok(usersMs < 1_000, `users took ${usersMs} ms`);
        assert.equal(list.find((u) => u.userID === s.userID)?.connected, true);
        assert.equal(seen.userID, s.userID);
      } finally {
        socket.disconnect();
      }
      const old = stopped;
      await waitFor(
        'the stopped node replaced by a ready one',
        async () => {
          const pid = (() => {
            try {
              return kit.pid(victim);
            } catch {
              return old;
            }
          })();
          if (pid === old) return false;
          const ready = await fetch(`http://127.0.0.1:${kit.nodePorts[0]}/readyz`).catch(
            () => undefined,
          );
          return ready?.status === 200;
        },
        15_000,
        100,
      );
      const replacedMs = Date.now() - started;
      await waitFor(
        `the ${held.length} clients of ${victim} back`,
        () => held.every((m) => m.disconnects > 0 && m.socket.connected),
        20_000 - replacedMs,
        100,
      );
      const backMs = Date.now() - started;
      console.log(
        `${victim} stopped under ${members.length} clients: replaced and ready after ${replacedMs} ms; ` +
          `its ${held.length} clients back after ${backMs} ms; ` +
          `disconnects among the other ${members.length - held.length}: ` +
          `${members.filter((m) => !held.includes(m)).reduce((n, m) => n + m.disconnects, 0)}`,
      );
    } finally {
      resume(stopped);
      stopped = undefined;
    }
  });

  it('stops counting the users of a hung node within 30 s', async () => {
    const victim = `node-${kit.nodePorts[1]}`;
    const watcher = await chatUserAwayFrom(kit.url, [victim], { username: 'onlooker' }, 60);
    const sleeper = await chatUserOn(kit.url, victim, { username: 'sleeper' }, 100);
    opened.push(watcher, sleeper);
    // Other users of earlier tries and tests come and go too: only the sleeper matters here.
    const gone = collect<string>(watcher.socket, 'user disconnected');

    stopped = kit.pid(victim);
    const stoppedAt = Date.now();
    process.kill(stopped, 'SIGSTOP');
    try {
      // The client goes away too; the hung node cannot notice.
      sleeper.socket.disconnect();
      await waitFor(
        'the sleeper reported disconnected',
        () => gone.includes(sleeper.session.userID),
        30_000,
        100,
      );
      console.log(
        `${victim} stopped: its user reported disconnected after ${Date.now() - stoppedAt} ms`,
      );
    } finally {
      resume(stopped);
      stopped = undefined;
    }
  });
});
