// What one WebSocket connection costs in heap at each layer under a node, held by one process
// directly, after a full GC:
//
//   node --import tsx scripts/bench/heap-layers.ts [--connections 5000]
//
// `ws` alone (Node's socket and the WebSocket), Engine.IO on it, Socket.IO on that, and Socket.IO
// with each session's HTTP request released (`socket.request`, which applications read). The
// floor under the target of 6 kB per idle connection in a node: a node that runs
// Socket.IO cannot hold less than the layers below it do. Each layer runs in a process of its
// own (this file again, with --serve), the clients in this one.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Server as EngineServer } from 'engine.io';
import { Server } from 'socket.io';
import WebSocket, { WebSocketServer } from 'ws';
import { fail } from '../kit/report.ts';
import { heapAfterGc } from './apps/heap.ts';

const LAYERS = {
  ws: { label: '`ws` alone', path: '/' },
  engine: { label: 'Engine.IO', path: '/engine.io/?EIO=4&transport=websocket' },
  socketio: { label: 'Socket.IO', path: '/socket.io/?EIO=4&transport=websocket' },
  'socketio-no-request': {
    label: 'Socket.IO, `socket.request` released',
    path: '/socket.io/?EIO=4&transport=websocket',
  },
} as const;
type Layer = keyof typeof LAYERS;

interface Sample {
  heap: number;
  held: number;
}

/** The server side: one layer on an HTTP server, answering the parent's questions over IPC. */
async function serve(layer: Layer): Promise<void> {
  const http = createServer();
  let held = () => 0;
  const quiet = { perMessageDeflate: false, httpCompression: false } as const;
  if (layer === 'ws') {
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    wss.on('connection', (socket) => socket.on('message', () => {}));
    held = () => wss.clients.size;
  } else if (layer === 'engine') {
    const engine = new EngineServer({ ...quiet, transports: ['websocket'] });
    engine.attach(http);
    engine.on('connection', (socket) => socket.on('message', () => {}));
    held = () => engine.clientsCount;
  } else {
    const io = new Server(http, { ...quiet, transports: ['websocket'] });
    if (layer === 'socketio-no-request') {
      io.engine.on('connection', (raw: { request: unknown }) => {
        raw.request = null;
      });
    }
    io.on('connection', () => {});
    held = () => io.engine.clientsCount;
  }
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  process.on('message', () => process.send?.({ heap: heapAfterGc(), held: held() }));
  process.send?.({ port: (http.address() as AddressInfo).port });
}

/** One client: the layer's handshake, then idle but for answering pings. */
function connect(url: string, socketIo: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.on('error', reject);
    socket.on('message', (data) => {
      const text = String(data);
      if (text === '2') socket.send('3');
      else if (socketIo && text.startsWith('0{')) socket.send('40');
      else if (socketIo && text.startsWith('40')) resolve(socket);
    });
    if (!socketIo) socket.on('open', () => resolve(socket));
  });
}

async function measure(layer: Layer, connections: number): Promise<number> {
  const child: ChildProcess = fork(import.meta.filename, ['--serve', layer], {
    execArgv: ['--import', 'tsx'],
  });
  try {
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    const ask = async (): Promise<Sample> => {
      child.send('heap');
      return ((await once(child, 'message')) as [Sample])[0];
    };
    const before = await ask();
    const url = `ws://127.0.0.1:${port}${LAYERS[layer].path}`;
    const sockets: WebSocket[] = [];
    for (let opened = 0; opened < connections; opened += 200) {
      const batch = Math.min(200, connections - opened);
      sockets.push(
        ...(await Promise.all(
          Array.from({ length: batch }, () => connect(url, layer.startsWith('socketio'))),
        )),
      );
    }
    const after = await ask();
    for (const socket of sockets) socket.terminate();
    if (after.held !== connections) {
      throw new Error(`${layer}: the server holds ${after.held} of ${connections} connections`);
    }
    return (after.heap - before.heap) / connections;
  } finally {
    child.kill();
  }
}

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    serve: { type: 'string' },
  },
});
if (values.serve !== undefined) {
  await serve(values.serve as Layer);
} else {
  const connections = Number(values.connections);
  if (!Number.isInteger(connections) || connections < 1 || connections > 15_000) {
    fail('heap-layers', `--connections "${values.connections}": 1 to 15000`, 'KIT_ERR_USAGE');
  }
  process.stdout.write(
    `Heap per connection after a full GC, ${connections} WebSocket connections held by one process:\n\n| layer | heap per connection |\n| --- | ---: |\n`,
  );
  for (const layer of Object.keys(LAYERS) as Layer[]) {
    const bytes = await measure(layer, connections);
    process.stdout.write(`| ${LAYERS[layer].label} | ${(bytes / 1024).toFixed(2)} kB |\n`);
  }
}
