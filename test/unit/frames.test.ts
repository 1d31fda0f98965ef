// Broadcast frames written as one buffer (services/node/frames.ts), on a real Socket.IO server
// and client over a WebSocket.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { Server } from 'socket.io';
import { Adapter } from 'socket.io-adapter';
import { io as connect } from 'socket.io-client';
import { UNSENT_LIMIT_BYTES } from '../../services/node/engine-limits.ts';
import { withOneBufferFrames, writeBroadcastsDirectly } from '../../services/node/frames.ts';
import { connected, next } from '../harness/clients.ts';

interface Sender {
  sendFrame(list: Buffer[], cb?: () => void): void;
}

/** The buffers of each frame the server writes for one broadcast, and what the client got. */
async function broadcastFrames(
  adapter: typeof Adapter,
): Promise<{ frames: Buffer[][]; got: unknown }> {
  const http = createServer();
  const io = new Server(http, { adapter });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const client = connect(`http://127.0.0.1:${(http.address() as AddressInfo).port}`, {
    transports: ['websocket'],
  });
  try {
    const [[socket]] = (await Promise.all([once(io, 'connection'), connected(client)])) as [
      [{ conn: { transport: { socket: { _sender: Sender } } } }],
      unknown,
    ];
    const sender = socket.conn.transport.socket._sender;
    const frames: Buffer[][] = [];
    const send = sender.sendFrame.bind(sender);
    sender.sendFrame = (list, cb) => {
      frames.push(list.map((b) => Buffer.from(b)));
      send(list, cb);
    };
    const got = next(client, 'news');
    io.emit('news', { text: 'héllo' });
    return { frames, got: await got };
  } finally {
    client.close();
    io.close();
  }
}

describe('broadcast frames', () => {
  it('are written as one buffer, and arrive whole', async () => {
    const { frames, got } = await broadcastFrames(withOneBufferFrames(Adapter));
    assert.deepEqual(got, { text: 'héllo' });
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.length, 1, 'one buffer: header and payload joined');
    const payload = Buffer.from('42["news",{"text":"héllo"}]');
    assert.deepEqual(frames[0]?.[0]?.subarray(-payload.length), payload);
  });

  it('come as a header and a payload from socket.io-adapter itself (what is joined)', async () => {
    const { frames, got } = await broadcastFrames(Adapter);
    assert.deepEqual(got, { text: 'héllo' });
    assert.equal(frames[0]?.length, 2);
  });
});

interface EngineConnection {
  on(event: 'packetCreate', listener: (packet: { type: string; data?: unknown }) => void): void;
  transport: {
    socket: { _sender: Sender; _socket: { cork(): void; uncork(): void; writableLength: number } };
  };
}

/**
 * A real server and WebSocket client; `direct` lets the server's clients take broadcast frames
 * straight to their WebSocket. Gives what Engine.IO made packets of, and what was counted past it.
 */
async function serving(
  direct: boolean,
  options: { polling?: boolean; perMessageDeflate?: boolean } = {},
) {
  const http = createServer();
  const io = new Server(http, {
    adapter: withOneBufferFrames(Adapter),
    perMessageDeflate: options.perMessageDeflate ? { threshold: 0 } : false,
  });
  const counted: number[] = [];
  if (direct) writeBroadcastsDirectly(io, (bytes) => counted.push(bytes));
  // WebSocket upgrades wait until released, so that a polling client stays on polling till then.
  const upgrades = http.listeners('upgrade') as ((...args: unknown[]) => void)[];
  let releaseUpgrades = () => {};
  if (options.polling) {
    http.removeAllListeners('upgrade');
    const released = new Promise<void>((resolve) => {
      releaseUpgrades = resolve;
    });
    http.on('upgrade', (...args: unknown[]) => {
      released.then(() => {
        for (const listener of upgrades) listener.apply(http, args);
      });
    });
  }
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const client = connect(`http://127.0.0.1:${(http.address() as AddressInfo).port}`, {
    transports: options.polling ? ['polling', 'websocket'] : ['websocket'],
  });
  const [[socket]] = (await Promise.all([once(io, 'connection'), connected(client)])) as [
    [{ conn: EngineConnection; emit(event: string, ...args: unknown[]): boolean }],
    unknown,
  ];
  const viaEngine: string[] = [];
  socket.conn.on('packetCreate', (packet) => {
    if (packet.type === 'message') viaEngine.push(String(packet.data));
  });
  const received: string[] = [];
  client.onAny((event: string, value: unknown) => received.push(`${event} ${value}`));
  const close = () => {
    client.close();
    io.close();
  };
  return { io, socket, client, counted, viaEngine, received, releaseUpgrades, close };
}

describe('broadcast frames written straight to the WebSocket', () => {
  it('go past Engine.IO when nothing waits, counted with their payload', async () => {
    const s = await serving(true);
    try {
      const got = next(s.client, 'news');
      s.io.emit('news', 'héllo');
      assert.equal(await got, 'héllo');
      assert.deepEqual(s.viaEngine, [], 'Engine.IO made no packet of it');
      assert.deepEqual(s.counted, [Buffer.byteLength('2["news","héllo"]')]);
    } finally {
      s.close();
    }
  });

  it('wait behind the packets Engine.IO still holds, in order', async () => {
    const s = await serving(true);
    try {
      // The first emit takes the transport; the others wait in Engine.IO's queue.
      for (let i = 0; i < 20; i++) s.socket.emit('direct', i);
      const got = next(s.client, 'news');
      s.io.emit('news', 'last');
      await got;
      assert.deepEqual(s.received, [
        ...Array.from({ length: 20 }, (_, i) => `direct ${i}`),
        'news last',
      ]);
      assert.ok(s.viaEngine.includes('2["news","last"]'), 'the broadcast went through the queue');
      assert.deepEqual(s.counted, []);
    } finally {
      s.close();
    }
  });

  it("take Engine.IO's way while the socket holds output unsent, behind it", async () => {
    const s = await serving(true);
    try {
      const { _sender: sender, _socket: tcp } = s.socket.conn.transport.socket;
      const ws = (await import('ws')) as unknown as {
        Sender: { frame(data: Buffer, options: Record<string, boolean | number>): Buffer[] };
      };
      tcp.cork();
      sender.sendFrame(
        ws.Sender.frame(Buffer.from('42["early","held"]'), { fin: true, opcode: 1, mask: false }),
      );
      assert.ok(tcp.writableLength > 0);
      const got = next(s.client, 'news');
      s.io.emit('news', 'after');
      tcp.uncork();
      await got;
      assert.deepEqual(s.received, ['early held', 'news after']);
      assert.ok(s.viaEngine.includes('2["news","after"]'));
      assert.deepEqual(s.counted, []);
    } finally {
      s.close();
    }
  });

  it('keep their order across an upgrade from polling', async () => {
    const s = await serving(true, { polling: true });
    try {
      // The node's side of the connection: polling until the upgrade is done.
      const conn = s.socket.conn as unknown as { transport: { name: string } };
      const transport = (): string => conn.transport.name;
      assert.equal(transport(), 'polling');
      let sent = 0;
      let afterUpgrade = 0;
      for (; sent < 10; sent++) s.io.emit('tick', sent);
      s.releaseUpgrades();
      while (afterUpgrade < 20) {
        s.io.emit('tick', sent++);
        if (transport() === 'websocket') afterUpgrade += 1;
        await new Promise((r) => setTimeout(r, 2));
      }
      const got = next(s.client, 'news');
      s.io.emit('news', 'end');
      await got;
      assert.deepEqual(s.received, [
        ...Array.from({ length: sent }, (_, i) => `tick ${i}`),
        'news end',
      ]);
      assert.ok(s.viaEngine.length > 0, 'some went through Engine.IO, before the upgrade');
      assert.ok(s.counted.length > 0, 'some went straight to the WebSocket, after it');
    } finally {
      s.close();
    }
  });

  it("take Engine.IO's way when the connection compresses", async () => {
    const s = await serving(true, { perMessageDeflate: true });
    try {
      const got = next(s.client, 'news');
      s.io.emit('news', 'squeezed');
      assert.equal(await got, 'squeezed');
      assert.deepEqual(s.viaEngine, ['2["news","squeezed"]']);
      assert.deepEqual(s.counted, []);
    } finally {
      s.close();
    }
  });

  it("take Engine.IO's way when larger than the unsent-output bound", async () => {
    const s = await serving(true);
    try {
      const big = 'x'.repeat(UNSENT_LIMIT_BYTES + 1);
      const got = next<string>(s.client, 'news');
      s.io.emit('news', big);
      assert.equal((await got).length, big.length);
      assert.equal(s.viaEngine.length, 1);
      assert.deepEqual(s.counted, []);
    } finally {
      s.close();
    }
  });

  it("reach a server's clients through Engine.IO unless that server asked", async () => {
    const asked = await serving(true);
    const other = await serving(false);
    try {
      const got = next(other.client, 'news');
      other.io.emit('news', 'plain');
      assert.equal(await got, 'plain');
      assert.deepEqual(other.viaEngine, ['2["news","plain"]']);
      assert.deepEqual(asked.counted, []);
    } finally {
      asked.close();
      other.close();
    }
  });
});
