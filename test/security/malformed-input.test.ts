// Thousands of broken Engine.IO / Socket.IO frames and bad HTTP requests, through nginx to every
// node: no node restarts, every node stays healthy, and HTTP gets clear 4xx answers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { chatUser } from '../harness/chat.ts';
import { ask } from '../harness/clients.ts';
import { httpFrom } from '../harness/http.ts';
import { type Kit, launchKit } from '../harness/kit.ts';

const BIG = 'x'.repeat(2 * 1024 * 1024);

/** Frames sent after a valid Socket.IO connect; each is wrong in its own way. */
const BAD_FRAMES: Array<string | Buffer> = [
  '',
  '4',
  '42',
  '42[',
  '42["private message"',
  '42{"event":"join"}',
  '42[1,2,3]',
  '42[null]',
  '42["join",{"__proto__":{"polluted":true}}]',
  '9',
  '49',
  '4x',
  '43',
  '43abc[]',
  '45-["join"]',
  '451-["join",{"_placeholder":true,"num":5}]',
  '4599999999999-["join"]',
  '45-1-["join"]',
  '41/nope,',
  '40/admin-secret,',
  '42/nope,["join","x"]',
  Buffer.from([0xff, 0x00, 0x13, 0x37]),
  '6',
  '3probe',
  `42["room message",${JSON.stringify({ room: 'r', content: 'y'.repeat(5000) })}]`,
];

function wsUrl(kit: Kit): string {
  return `${kit.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
}

/** Opens a raw Engine.IO WebSocket, connects to `/` as a chat user, sends `frames`, closes. */
function abuse(kit: Kit, net: number, frames: Array<string | Buffer>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl(kit), { localAddress: `127.0.${net}.1` });
    let sent = 0;
    const finish = () => resolve(sent);
    ws.once('error', finish);
    ws.once('close', finish);
    ws.once('message', () => {
      ws.send(`40${JSON.stringify({ username: `abuser${net}` })}`);
      for (const frame of frames) {
        if (ws.readyState !== WebSocket.OPEN) break;
        ws.send(frame);
        sent += 1;
      }
      setTimeout(() => ws.close(), 200);
    });
  });
}

describe('malformed input', { timeout: 180_000 }, () => {
  let kit: Kit;
  let pids: number[];
  before(async () => {
    kit = await launchKit();
    pids = kit.nodePorts.map((p) => kit.pid(`node-${p}`));
  });
  after(async () => {
    await kit?.stop();
  });

  it('survives thousands of broken frames over WebSocket', async () => {
    let frames = 0;
    for (let round = 0; round < 8; round++) {
      const sent = await Promise.all(
        Array.from({ length: 30 }, (_, i) => {
          const net = 1 + ((round * 30 + i) % 200);
          // Each connection sends every bad frame, in its own order; many end at the first.
          const order = [...BAD_FRAMES].sort(() => Math.random() - 0.5);
          return abuse(kit, net, [...order, ...order]);
        }),
      );
      frames += sent.reduce((a, b) => a + b, 0);
    }
    // Oversized frames: beyond maxHttpBufferSize the node closes that one connection.
    frames += (
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => abuse(kit, 210 + i, [`42["join","${BIG}"]`])),
      )
    ).reduce((a, b) => a + b, 0);
    console.log(`broken WebSocket frames sent: ${frames}`);
    assert.ok(frames >= 1000, `only ${frames} frames were sent`);
  });

  it('answers broken polling requests, bad query strings and oversized bodies with 4xx', async () => {
    const statuses = new Map<number, number>();
    let calls = 0;
    const request = async (
      path: string,
      init: { method?: string; body?: string; headers?: Record<string, string> } = {},
    ) => {
      // Spread over many client addresses, as real clients are: nginx rate-limits new sessions per address.
      const answer = await httpFrom(1 + (calls++ % 200), `${kit.url}${path}`, init);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      return answer;
    };
    const badQueries = [
      '/socket.io/?EIO=3&transport=polling',
      '/socket.io/?EIO=5&transport=polling',
      '/socket.io/?EIO=abc&transport=polling',
      '/socket.io/?transport=polling',
      '/socket.io/?EIO=4&transport=carrier-pigeon',
      '/socket.io/?EIO=4&transport=polling&sid=does-not-exist',
      '/socket.io/?EIO=4&transport=websocket',
      '/socket.io/?EIO=4&transport=polling&sid=%E0%A4%A',
      '/socket.io/?EIO=4&transport=polling&sid=x&sid=y',
    ];
    let requests = 0;
    for (let round = 0; round < 100; round++) {
      for (const path of badQueries) {
        const { status } = await request(path);
        assert.ok(status >= 400 && status < 500, `${path} answered ${status}`);
        requests += 1;
      }
    }
    // Broken payloads inside real polling sessions: the session is closed, the node is not.
    for (let round = 0; round < 200; round++) {
      const net = 1 + (round % 200);
      const open = await httpFrom(net, `${kit.url}/socket.io/?EIO=4&transport=polling`);
      assert.equal(open.status, 200, open.body);
      const sid = (JSON.parse(open.body.slice(1)) as { sid: string }).sid;
      const body = ['4', '42[', '9', '451-["x"]', '\x1e\x1e', '40{"username":'][
        round % 6
      ] as string;
      // The same address again, so ip_hash reaches the node that holds the session.
      const url = `${kit.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
      const { status } = await httpFrom(net, url, { method: 'POST', body });
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      assert.ok(status < 500, `broken payload answered ${status}`);
      requests += 2;
    }
    for (const path of ['/socket.io/?EIO=4&transport=polling', '/api/emit']) {
      for (let i = 0; i < 20; i++) {
        const { status } = await request(path, {
          method: 'POST',
          body: BIG,
          headers: { 'content-type': 'application/json' },
        });
        assert.equal(status, 413, `oversized body to ${path}`);
        requests += 1;
      }
    }
    console.log(`bad HTTP requests: ${requests}; answers by status:`, Object.fromEntries(statuses));
    assert.ok(![...statuses.keys()].some((s) => s >= 500));
  });

  it('left every node running, healthy and serving', async () => {
    assert.deepEqual(
      kit.nodePorts.map((p) => kit.pid(`node-${p}`)),
      pids,
      'a node was restarted',
    );
    for (const port of kit.nodePorts) {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(response.status, 200);
    }
    const user = await chatUser(kit.url, 90, { username: 'after-the-storm' });
    assert.equal(((await ask(user.socket, 'join', 'calm')) as { ok?: boolean }).ok, true);
    user.socket.disconnect();
  });
});
