// The ceiling: a bare `ws` server doing the same room fan-out, one process, no Socket.IO.
// Messages are JSON: {"join": room} or {"pub": room, "t": …, "pad": …}; a publication is sent
// unchanged to every member of its room. Listens on a port, or on a Unix socket behind nginx
// (the nginx floor, variants.ts).
import { chmodSync } from 'node:fs';
import { createServer } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';

/** A port on 127.0.0.1, or the path of a Unix socket (the nginx floor). */
const where = process.argv[2] as string;
const rooms = new Map<string, Set<WebSocket>>();
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
      for (const member of rooms.get(message.pub) ?? []) member.send(text);
    }
  });
  ws.on('close', () => {
    for (const room of joined) rooms.get(room)?.delete(ws);
  });
});
const ready = () => {
  // nginx's workers (user nobody) connect to the socket.
  if (!/^\d+$/.test(where)) chmodSync(where, 0o666);
  process.send?.('ready');
};
if (/^\d+$/.test(where)) http.listen(Number(where), '127.0.0.1', ready);
else http.listen(where, ready);
