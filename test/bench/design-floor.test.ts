// The bench's design floor (scripts/bench/variants.ts, startDesignFloor): four bare `ws` servers
// behind nginx, sharing rooms through Redis. A floor that left out the sharing would cost less
// than the design it stands for: every member of a room gets a publication, whichever server
// nginx chose for it and for the publisher, and the publisher's own server writes it once.
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { WebSocket } from 'ws';
import { startDesignFloor, type Variant } from '../../scripts/bench/variants.ts';
import { processesMentioning, waitFor } from '../harness/kit.ts';

let floor: Variant;

before(async () => {
  floor = await startDesignFloor();
});

after(async () => {
  await floor?.stop();
});

/** A member from 127.0.`n`.1 (ip_hash: a /24 of its own), and the messages it got. */
async function member(n: number): Promise<{ ws: WebSocket; got: string[] }> {
  const ws = new WebSocket(floor.url.replace(/^http/, 'ws'), { localAddress: `127.0.${n}.1` });
  const got: string[] = [];
  ws.on('message', (data) => got.push(data.toString()));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ join: 'room' }));
  await waitFor('the join to be answered', () => got.includes('{"joined":true}'));
  return { ws, got };
}

it('delivers a publication to every member of its room, on every server, once', {
  timeout: 60_000,
}, async () => {
  // Sixteen /24s: ip_hash spreads them over the four servers (a fixed spread: the hash is).
  const members = await Promise.all(Array.from({ length: 16 }, (_, i) => member(i + 1)));
  try {
    const publication = JSON.stringify({ pub: 'room', t: 1, pad: 'x' });
    for (const sender of [members[0], members[9]]) {
      sender?.ws.send(publication);
      await waitFor('every member to get the publication', () =>
        members.every((m) => m.got.filter((text) => text === publication).length >= 1),
      );
    }
    // Two publications: each member got exactly two, none written twice by the publisher's server.
    await new Promise((r) => setTimeout(r, 300));
    for (const [i, m] of members.entries())
      assert.equal(m.got.filter((text) => text === publication).length, 2, `member ${i + 1}`);
  } finally {
    for (const m of members) m.ws.close();
  }
});

it('stops every process it started', async () => {
  await floor.stop();
  assert.deepEqual(await processesMentioning(join(tmpdir(), 'kit-design-floor-')), []);
});
