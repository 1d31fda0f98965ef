// The ceiling: a bare `ws` server doing the same room fan-out, one process, no Socket.IO.
// Messages are JSON: {"join": room} or {"pub": room, "t": …, "pad": …}; a publication is sent
// unchanged to every member of its room. Listens on a port, or on a Unix socket behind nginx
// (the nginx floors, variants.ts).
//
// The least a server can do per delivery: a publication's frame is made once, as one buffer, and
// each member costs one write of it (the way Socket.IO's nodes write a broadcast, without their
// per-packet work), so that no server, the kit's nodes included, writes a delivery for less.
//
// Given a Redis socket and a one-letter name as well (the kit's design floor, variants.ts), it is
// one of several such servers that share rooms through Redis as the kit's nodes do, with the same
// client (node-redis, a publication without a timer of its own, as the kit's adapter publishes):
// a publication goes to its own members, then to Redis on the room's channel as the frame itself,
// its first byte the server's name; every server, the publisher too, hears it back and writes the
// frame to its own members (the publisher skips its own). What the kit's design costs at least:
// no Socket.IO, no msgpack, no frame made again on the other servers.
import { chmodSync } from 'node:fs';
import { createServer } from 'node:http';
import { createClient } from 'redis';
import * as wsLib from 'ws';
import { WebSocket, WebSocketServer } from 'ws';

/** A port on 127.0.0.1, or the path of a Unix socket (the nginx floor). */
const where = process.argv[2] as string;
/** The Redis Unix socket of the servers that share rooms, and this server's one-letter name. */
const [redisSocket, name] = process.argv.slice(3) as [string | undefined, string | undefined];
const rooms = new Map<string, Set<WebSocket>>();
const CHANNEL = 'floor#';

/** ws's frame maker, which @types/ws leaves out. */
const { Sender } = wsLib as unknown as {
  Sender: { frame(data: Buffer, options: Record<string, boolean | number>): Buffer[] };
};

/** ws's own writer of a frame already made (engine.io writes Socket.IO's broadcasts with it). */
interface WithSender {
  _sender: { sendFrame(list: Buffer[]): void };
}

/**
 * A text message's frame, once for all its recipients: a server's frames are not masked. With
 * `head`, the same buffer starts with it (what Redis carries for the design floor).
 */
function textFrame(text: string, head?: Buffer): Buffer {
  const parts = Sender.frame(Buffer.from(text), {
    fin: true,
    rsv1: false,
    opcode: 1,
    mask: false,
    readOnly: false,
  });
  return Buffer.concat(head ? [head, ...parts] : parts);
}

const http = createServer((req, res) => {
  if (req.url === '/healthz') res.writeHead(200).end('{"status":"ok"}');
  else res.writeHead(404).end();
});
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 1_000_000 });
wss.on('connection', (ws) => {
  const joined = new Set<string>();
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const text = data.toString();
    let message: { join?: string; pub?: string };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message.join === 'string') {
      const members = rooms.get(message.join) ?? new Set();
      members.add(ws);
      rooms.set(message.join, members);
      joined.add(message.join);
      ws.send('{"joined":true}');
    } else if (typeof message.pub === 'string') {
      const members = rooms.get(message.pub);
      // Alone, a room without members here costs nothing; shared, the others may hold some.
      if (!members && !shared) return;
      // Shared, made once behind this server's name: Redis carries it so, members get the rest.
      const made = textFrame(text, shared?.name);
      if (members) writeTo(members, shared ? made.subarray(1) : made);
      shared?.publish(message.pub, made);
    }
  });
  ws.on('close', () => {
    for (const room of joined) rooms.get(room)?.delete(ws);
  });
});
function writeTo(members: Set<WebSocket>, frame: Buffer): void {
  for (const member of members)
    if (member.readyState === WebSocket.OPEN)
      (member as unknown as WithSender)._sender.sendFrame([frame]);
}

/** The rooms shared through Redis, when given one. */
const shared = redisSocket && name ? await shareRooms(redisSocket, name) : undefined;

async function shareRooms(path: string, own: string) {
  const options = {
    socket: { path, tls: false as const },
    maintNotifications: 'disabled' as const,
  };
  const sub = createClient(options);
  const pub = createClient(options);
  for (const client of [sub, pub]) client.on('error', () => {});
  await Promise.all([sub.connect(), pub.connect()]);
  const ownByte = own.charCodeAt(0);
  await sub.pSubscribe(
    `${CHANNEL}*`,
    (message: Buffer, channel: Buffer) => {
      if (message[0] === ownByte) return;
      const members = rooms.get(channel.toString('utf8', CHANNEL.length));
      if (members) writeTo(members, message.subarray(1));
    },
    true,
  );
  const untimed = pub.withCommandOptions({ timeout: undefined });
  return {
    /** This server's name, the one byte that heads what it publishes (and that its own skip). */
    name: Buffer.of(ownByte),
    /** `named`: a frame behind this server's name. */
    publish(room: string, named: Buffer): void {
      untimed.publish(CHANNEL + room, named).catch(() => {});
    },
  };
}

const ready = () => {
  // nginx's workers (user nobody) connect to the socket.
  if (!/^\d+$/.test(where)) chmodSync(where, 0o666);
  process.send?.('ready');
};
if (/^\d+$/.test(where)) http.listen(Number(where), '127.0.0.1', ready);
else http.listen(where, ready);
// The bench gone (killed, or interrupted before it could stop this server): go with it.
process.on('disconnect', () => process.exit(0));
