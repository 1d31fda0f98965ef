import type { AppContext } from '../node/app-loader.ts';

// Placeholder until the chat lands: answers pings so a deployment can be checked end to end.
export default function app({ io, nodeId }: AppContext): void {
  io.on('connection', (socket) => {
    socket.emit('welcome', { node: nodeId });
  });
}
