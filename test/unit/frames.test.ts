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
import { withOneBufferFrames } from '../../services/node/frames.ts';
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
