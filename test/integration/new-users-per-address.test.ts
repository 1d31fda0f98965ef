// One client address cannot create users without end (each costs Redis keys kept for days): past
// a burst, new users from it are refused with a reason; other addresses and resumed sessions are
// still served.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ChatUser, chatUser } from '../harness/chat.ts';
import { client, connected } from '../harness/clients.ts';
import { useKit } from '../harness/kit.ts';

const TRIES = 150;

describe('new chat users per client address', { timeout: 120_000 }, () => {
  const opened: ChatUser[] = [];
  const kit = useKit({ clients: opened });

  it(`refuses new users from one address past its burst, serving others`, async () => {
    const first = await chatUser(kit.url, 5, { username: 'first' });
    opened.push(first);
    const started = Date.now();
    const outcomes = await Promise.all(
      Array.from({ length: TRIES }, async (_, i) => {
        const socket = client(kit.url, {
          net: 5,
          auth: { username: `n${i}` },
          reconnection: false,
        });
        try {
          await connected(socket);
          return 'ok';
        } catch (error) {
          return (error as Error).message;
        } finally {
          socket.disconnect();
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const served = outcomes.filter((o) => o === 'ok').length;
    const refused = outcomes.filter((o) => o === 'too many new users from this address, try later');
    console.log(`${TRIES + 1} new users from one address in ${seconds} s: ${served + 1} served`);
    assert.equal(served + refused.length, TRIES, `unexpected outcomes: ${outcomes}`);
    // A burst of 100 (the first user took one), plus one a second of refill.
    assert.ok(served >= 99 && served <= 99 + Math.ceil(seconds) + 1, `${served} served`);

    const elsewhere = await chatUser(kit.url, 6, { username: 'other address' });
    opened.push(elsewhere);
    first.socket.disconnect();
    const resumed = await chatUser(kit.url, 5, { sessionID: first.session.sessionID });
    opened.push(resumed);
    assert.equal(resumed.session.userID, first.session.userID);
  });
});
