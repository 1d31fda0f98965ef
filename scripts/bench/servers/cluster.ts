// The tutorials' approach: Node's cluster on one port, @socket.io/sticky in the primary routing
// each client to one worker, and @socket.io/cluster-adapter sharing broadcasts between workers.
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { createAdapter, setupPrimary } from '@socket.io/cluster-adapter';
import { setupMaster, setupWorker } from '@socket.io/sticky';
import { Server } from 'socket.io';
import { SOCKET_OPTIONS } from '../../../services/node/socket-options.ts';
import { attachFanout } from '../apps/fanout-app.ts';

const port = Number(process.argv[2]);
const workers = Number(process.argv[3] ?? availableParallelism());

if (cluster.isPrimary) {
  // The bench gone (killed, or interrupted before it could stop this server): go with it; the
  // workers follow their primary.
  process.on('disconnect', () => process.exit(0));
  const http = createServer();
  setupMaster(http, { loadBalancingMethod: 'least-connection' });
  setupPrimary();
  // The primary hands each connection's first bytes to a worker as a Buffer, which the default
  // JSON serialization of IPC does not carry (socket.io docs, "Using multiple nodes").
  cluster.setupPrimary({ serialization: 'advanced' });
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('message', (m) => {
      if (m === 'worker-ready' && ++ready === workers) {
        http.listen(port, '127.0.0.1', () => process.send?.('ready'));
      }
    });
  }
} else {
  const http = createServer();
  const io = new Server(http, { ...SOCKET_OPTIONS, transports: ['websocket', 'polling'] });
  io.adapter(createAdapter());
  setupWorker(io);
  attachFanout(io);
  process.send?.('worker-ready');
}
