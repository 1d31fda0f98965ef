// The heap a process holds after a full garbage collection: what its live objects cost, which
// the heap-used gauge (garbage included, whatever the collector last left) does not say. The
// bench reads it per connection from each node (`GET /bench/heap`) and from a plain process.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// `gc` without --expose-gc on the command line: the flag set now reaches the next context made.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of heap in use after two full collections (the second frees what the first's finalisers let go). */
export function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/**
 * Whether a request may force a collection: only one made to the process directly, from this
 * host. A full GC of a node holding 50,000 sockets takes a while; through nginx (which adds
 * X-Real-IP) or from another host, no client can ask for one.
 */
export const directRequest = (request: {
  headers: Record<string, unknown>;
  socket: { remoteAddress?: string };
}) => {
  const from = request.socket.remoteAddress;
  const loopback = from === undefined || from === '::1' || /^(::ffff:)?127\./.test(from);
  return loopback && request.headers['x-real-ip'] === undefined;
};
