// Presence that is true across nodes: a user whose node was SIGKILLed, with its client gone too,
// is reported disconnected within 30 s, while a user whose client moves to another node is
// never reported disconnected.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChatUser, chatUserAwayFrom, chatUserOn } from '../harness/chat.ts';
import { next } from '../harness/clients.ts';
import { useKit, waitFor } from '../harness/kit.ts';

describe('presence across nodes', { timeout: 120_000 }, () => {
  const opened: ChatUser[] = [];
  const kit = useKit({ clients: opened });

  it('settles the users of a SIGKILLed node: the gone one within 30 s, the moved one never', async () => {
    const victim = `node-${kit.nodePorts[0]}`;
    const observer = await chatUserAwayFrom(kit.url, [victim], { username: 'observer' }, 1);
    const ghost = await chatUserOn(kit.url, victim, { username: 'ghost' }, 100);
    const mover = await chatUserOn(kit.url, victim, { username: 'mover' }, ghost.net + 1);
    opened.push(observer, ghost, mover);
    const gone = new Map<string, number>();
    observer.socket.on('user disconnected', (userID: string) => {
      if (!gone.has(userID)) gone.set(userID, Date.now());
    });
    const moverBack = next<{ node: string }>(mover.socket, 'session', 15_000);

    const killedAt = Date.now();
    process.kill(kit.pid(victim), 'SIGKILL');
    ghost.socket.disconnect();

    const moved = await moverBack;
    const movedMs = Date.now() - killedAt;
    const ghostGoneAt = await waitFor(
      'the ghost reported disconnected',
      () => gone.get(ghost.session.userID),
      30_000,
      100,
    );
    // The mover's grace would have ended by now had it been counted gone.
    await new Promise((r) => setTimeout(r, 3_000));
    console.log(
      `SIGKILL ${victim}: ghost reported disconnected after ${ghostGoneAt - killedAt} ms; ` +
        `mover back on ${moved.node} after ${movedMs} ms, reported disconnected: ` +
        `${gone.has(mover.session.userID)}`,
    );
    assert.ok(ghostGoneAt - killedAt < 30_000);
    assert.equal(gone.has(mover.session.userID), false, 'the moved user was reported gone');
    assert.equal(gone.has(observer.session.userID), false);
  });
});
