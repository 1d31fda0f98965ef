// nginx's per-address limits: a flood of new sessions from one address is cut off with 429,
// while other addresses and requests inside a session go on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { httpFrom } from '../harness/http.ts';
import { useKit } from '../harness/kit.ts';

describe('per-address limits', () => {
  const kit = useKit({ nodes: 2 });

  it('answers a handshake flood from one address with 429 and serves other addresses', async () => {
    const url = `${kit.url}/socket.io/?EIO=4&transport=polling`;
    const answers = await Promise.all(Array.from({ length: 600 }, () => httpFrom(9, url)));
    const counts = new Map<number, number>();
    for (const a of answers) counts.set(a.status, (counts.get(a.status) ?? 0) + 1);
    console.log('600 handshakes from one address:', Object.fromEntries(counts));
    assert.ok((counts.get(429) ?? 0) > 0, 'no handshake was limited');
    assert.ok((counts.get(200) ?? 0) >= 200, 'the burst allowance was not served');
    assert.equal((await httpFrom(10, url)).status, 200, 'another address must not be limited');
  });

  it('does not limit requests inside a session', async () => {
    const open = await httpFrom(11, `${kit.url}/socket.io/?EIO=4&transport=polling`);
    const sid = (JSON.parse(open.body.slice(1)) as { sid: string }).sid;
    const url = `${kit.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    // Socket.IO CONNECT, then events with acknowledgements, each ack fetched by a long-poll GET:
    // 300 requests from one address in a few seconds, none refused.
    assert.equal(
      (await httpFrom(11, url, { method: 'POST', body: '40{"username":"poller"}' })).status,
      200,
    );
    assert.match((await httpFrom(11, url)).body, /^40/);
    for (let i = 0; i < 150; i++) {
      const post = await httpFrom(11, url, { method: 'POST', body: `42${i}["join","polled"]` });
      assert.equal(post.status, 200);
      // Long-poll until the acknowledgement comes (earlier packets may come first).
      let body = '';
      for (let polls = 0; polls < 5 && !body.includes(`43${i}[`); polls++) {
        const get = await httpFrom(11, url);
        assert.equal(get.status, 200);
        body = get.body;
      }
      assert.ok(body.includes(`43${i}[`), `no acknowledgement for event ${i}`);
    }
  });
});
