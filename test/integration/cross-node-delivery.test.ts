// The Redis adapter carries broadcasts, room messages and POST /api/emit to every node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Socket } from 'socket.io-client';
import { ask, clientsOnNets, closeAll, collect, next } from '../harness/clients.ts';
import { type Kit, launchKit } from '../harness/kit.ts';

const APP_MODULE = 'test/fixtures/echo-app.ts';
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('delivery across nodes', () => {
  let kit: Kit;
  const clients: Array<{ socket: Socket; node: string }> = [];

  before(async () => {
    kit = await launchKit({ env: { APP_MODULE } });
    clients.push(...(await clientsOnNets(kit.url, 16)));
    assert.ok(new Set(clients.map((c) => c.node)).size >= 3, 'clients must span several nodes');
  });
  after(async () => {
    closeAll(clients.map((c) => c.socket));
    await kit?.stop();
  });

  it('delivers a broadcast from one client to clients on every node', async () => {
    const received = clients.map((c) => next<{ payload: string }>(c.socket, 'broadcast'));
    const sender = clients[0] as { socket: Socket };
    assert.deepEqual(await ask(sender.socket, 'broadcast', 'hello all'), { ok: true });
    const payloads = await Promise.all(received);
    assert.ok(payloads.every((p) => p.payload === 'hello all'));
  });

  it('delivers a room message to exactly the room members, spread over several nodes', async () => {
    const members = clients.filter((_, i) => i % 2 === 0);
    const others = clients.filter((_, i) => i % 2 === 1);
    assert.ok(new Set(members.map((m) => m.node)).size >= 2, 'members must span several nodes');
    for (const m of members) assert.deepEqual(await ask(m.socket, 'join', 'blue'), { ok: true });
    const strayed = others.map((o) => collect(o.socket, 'room'));
    const got = members.map((m) => next<{ room: string; payload: string }>(m.socket, 'room'));
    const sender = others[0] as { socket: Socket };
    await ask(sender.socket, 'to room', { room: 'blue', payload: 'members only' });
    for (const message of await Promise.all(got)) {
      assert.deepEqual([message.room, message.payload], ['blue', 'members only']);
    }
    await settle(300);
    assert.equal(strayed.flat().length, 0, 'a non-member received the room message');
  });

  describe('POST /api/emit', () => {
    const emit = (
      body: unknown,
      token?: string,
      contentType = 'application/json',
      more: Record<string, string> = {},
    ) =>
      fetch(`${kit.url}/api/emit`, {
        method: 'POST',
        headers: {
          'content-type': contentType,
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...more,
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it('answers 401 without the token or with a wrong one', async () => {
      assert.equal((await emit({ event: 'x' })).status, 401);
      const wrong = await emit({ event: 'x' }, 'not-the-token-at-all');
      assert.equal(wrong.status, 401);
      assert.match(((await wrong.json()) as { error: string }).error, /token/);
    });

    it('answers 400 with an error on a malformed body', async () => {
      for (const body of [
        '{not json',
        { data: 1 },
        { event: 7 },
        { event: '' },
        { event: 'connect' },
      ]) {
        const response = await emit(body, kit.emitToken());
        assert.equal(response.status, 400, `body ${JSON.stringify(body)}`);
        assert.equal(typeof ((await response.json()) as { error: unknown }).error, 'string');
      }
      assert.equal((await emit('event=x', kit.emitToken(), 'text/plain')).status, 400);
    });

    it('answers 202 and delivers to every node, or only to a room', async () => {
      const all = clients.map((c) => next<{ n: number }>(c.socket, 'announcement'));
      const response = await emit({ event: 'announcement', data: { n: 1 } }, kit.emitToken());
      assert.equal(response.status, 202);
      assert.ok((await Promise.all(all)).every((d) => d.n === 1));

      const members = clients.filter((_, i) => i % 2 === 0);
      const others = clients.filter((_, i) => i % 2 === 1);
      const strayed = others.map((o) => collect(o.socket, 'blue news'));
      const got = members.map((m) => next(m.socket, 'blue news'));
      const roomResponse = await emit(
        { event: 'blue news', data: 'x', room: 'blue' },
        kit.emitToken(),
      );
      assert.equal(roomResponse.status, 202);
      await Promise.all(got);
      await settle(300);
      assert.equal(strayed.flat().length, 0);
    });

    it('does not throttle a backend with the token by its address; callers without it are', async () => {
      // 600 emits from one address in a burst: nginx's per-address limit (50/s, burst 200) would
      // refuse most of them; with the token none is refused.
      const statuses = await Promise.all(
        Array.from({ length: 600 }, (_, n) =>
          emit({ event: 'burst', data: { n } }, kit.emitToken()).then((r) => r.status),
        ),
      );
      assert.deepEqual([...new Set(statuses)], [202]);
      const strangers = await Promise.all(
        Array.from({ length: 400 }, () => emit({ event: 'burst' }).then((r) => r.status)),
      );
      assert.ok(strangers.includes(429), 'requests without the token are limited per address');
      assert.ok(strangers.includes(401));
    });

    it('delivers an event once per Idempotency-Key, however often it is sent', async () => {
      const got = collect(clients[0]?.socket as Socket, 'once');
      const key = { 'idempotency-key': `test-${Date.now()}` };
      const first = await emit({ event: 'once', data: 1 }, kit.emitToken(), undefined, key);
      assert.equal(first.status, 202);
      const again = await emit({ event: 'once', data: 1 }, kit.emitToken(), undefined, key);
      assert.equal(again.status, 202);
      assert.deepEqual(await again.json(), { ok: true, duplicate: true });
      const other = await emit({ event: 'once', data: 2 }, kit.emitToken(), undefined, {
        'idempotency-key': `${key['idempotency-key']}-b`,
      });
      assert.equal(other.status, 202);
      await settle(300);
      assert.deepEqual(got, [1, 2]);
      const bad = await emit({ event: 'once' }, kit.emitToken(), undefined, {
        'idempotency-key': 'no spaces',
      });
      assert.equal(bad.status, 400);
    });
  });
});
