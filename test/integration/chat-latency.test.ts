// The single-host figure the multi-host one (test/multihost/across-hosts.test.ts) is compared
// with: a room message from a user on one node to a user on another, acknowledged and delivered,
// measured the same way (50 messages, paced under the chat's per-socket event limit).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ChatUser, chatUser, chatUserAwayFrom } from '../harness/chat.ts';
import { ask, next, percentile } from '../harness/clients.ts';
import { type Kit, launchKit } from '../harness/kit.ts';

describe('a room message between two nodes of one host', () => {
  let kit: Kit;
  const users: ChatUser[] = [];

  before(async () => {
    kit = await launchKit({ nodes: 2 });
    const alice = await chatUser(kit.url, 1, { username: 'alice' });
    users.push(alice);
    users.push(await chatUserAwayFrom(kit.url, [alice.session.node], { username: 'bob' }, 2));
  });
  after(async () => {
    for (const user of users) user.socket.disconnect();
    await kit?.stop();
  });

  it('is acknowledged and delivered, every one of 50, and the time is printed', async () => {
    const [alice, bob] = users as [ChatUser, ChatUser];
    assert.notEqual(alice.session.node, bob.session.node);
    for (const user of users) await ask(user.socket, 'join', 'ops');
    const latency: number[] = [];
    for (let i = 0; i < 50; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 110));
      const got = next<{ content: string }>(alice.socket, 'room message');
      const began = performance.now();
      const reply = await ask<{ ok?: true }>(bob.socket, 'room message', {
        room: 'ops',
        content: `m${i}`,
      });
      assert.equal(reply.ok, true, JSON.stringify(reply));
      assert.equal((await got).content, `m${i}`);
      latency.push(performance.now() - began);
    }
    console.log(
      `# room message node → node on loopback (ack and delivery), 50 messages: p50 ${percentile(latency, 50).toFixed(1)} ms, p99 ${percentile(latency, 99).toFixed(1)} ms`,
    );
  });
});
