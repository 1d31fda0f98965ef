// A full Redis (maxmemory with noeviction refuses writes with OOM) is told to clients as
// `storage full`, on acknowledgements and on the handshake, not as an outage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from '../../services/node/redis.ts';
import { type ChatUser, chatUser } from '../harness/chat.ts';
import { ask, client, connected } from '../harness/clients.ts';
import { type Kit, kitRedis, launchKit } from '../harness/kit.ts';

describe('a full Redis', { timeout: 120_000 }, () => {
  let kit: Kit;
  let redis: Redis | undefined;
  const opened: ChatUser[] = [];

  before(async () => {
    kit = await launchKit();
  });
  after(async () => {
    for (const user of opened) user.socket.disconnect();
    await redis?.configSet('maxmemory', '0').catch(() => {});
    await redis?.quit().catch(() => {});
    await kit?.stop();
  });

  it('answers `storage full` on acknowledgements and handshakes', async () => {
    const alice = await chatUser(kit.url, 1, { username: 'alice' });
    const bob = await chatUser(kit.url, 2, { username: 'bob' });
    opened.push(alice, bob);
    assert.equal((await ask<{ ok?: true }>(alice.socket, 'join', 'lobby')).ok, true);

    // Fill it up: a limit below what it already holds refuses every write that needs memory.
    redis = await kitRedis(kit);
    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    await redis.configSet('maxmemory-policy', 'noeviction');
    await redis.configSet('maxmemory', String(Math.floor(used / 2)));

    const refused = [
      await ask<{ error?: string }>(alice.socket, 'private message', {
        content: 'hi',
        to: bob.session.userID,
      }),
      await ask<{ error?: string }>(alice.socket, 'room message', { room: 'lobby', content: 'hi' }),
      await ask<{ error?: string }>(alice.socket, 'join', 'elsewhere'),
    ];
    for (const answer of refused) assert.equal(answer.error, 'storage full');

    for (const auth of [{ username: 'carol' }, { sessionID: bob.session.sessionID }]) {
      const socket = client(kit.url, { net: 3, auth, reconnection: false });
      await assert.rejects(connected(socket), /^Error: storage full$/);
      socket.disconnect();
    }
    // Reads still work while Redis is full.
    const page = await ask<{ ok?: true }>(alice.socket, 'messages', { with: bob.session.userID });
    assert.equal(page.ok, true);
  });
});
