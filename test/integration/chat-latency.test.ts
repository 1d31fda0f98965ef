// The single-host figure the multi-host one (test/multihost/across-hosts.test.ts) is compared
// with: a room message from a user on one node to a user on another, acknowledged and delivered,
// measured the same way (50 messages, paced under the chat's per-socket event limit).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type ChatUser, chatUser, chatUserAwayFrom, p50p99, roomLatency } from '../harness/chat.ts';
import { ask } from '../harness/clients.ts';
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
    const latency = await roomLatency(bob.socket, alice.socket, 'ops');
    assert.equal(latency.length, 50);
    console.log(
      `# room message node → node on loopback (ack and delivery), 50 messages: ${p50p99(latency)}`,
    );
  });
});
