// One plain Socket.IO process, no adapter, no proxy: what a user runs before scaling out.
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { SOCKET_OPTIONS } from '../../../services/node/socket-options.ts';
import { attachFanout } from '../apps/fanout-app.ts';
import { heapAfterGc } from '../apps/heap.ts';

const port = Number(process.argv[2]);
const http = createServer();
const io = new Server(http, { ...SOCKET_OPTIONS, transports: ['websocket', 'polling'] });
attachFanout(io);
http.on('request', (req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
  } else if (req.url === '/bench/heap') {
    const body = { heapUsed: heapAfterGc(), clients: io.engine.clientsCount };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
});
http.listen(port, '127.0.0.1', () => process.send?.('ready'));
// The bench gone (killed, or interrupted before it could stop this server): go with it.
process.on('disconnect', () => process.exit(0));
