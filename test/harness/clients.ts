// Real socket.io-client connections through nginx, each from its own source network
// (127.0.N.1) so that nginx's ip_hash spreads them over the nodes.
import { Agent } from 'node:http';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';

export interface ClientOptions extends Partial<ManagerOptions & SocketOptions> {
  /** Third octet of the source address 127.0.N.1 (1-254), or the source address itself. */
  net: number | string;
}

/** A client bound to 127.0.N.1 (or the address given). The polling transport ignores
 * `localAddress`, so an http.Agent bound to the same address carries its requests. */
export function client(baseUrl: string, { net, ...options }: ClientOptions): Socket {
  const localAddress = typeof net === 'string' ? net : `127.0.${net}.1`;
  return io(baseUrl, {
    forceNew: true,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    transports: ['websocket'],
    ...options,
    localAddress,
    agent: new Agent({ localAddress, keepAlive: true }),
    // socket.io-client types `agent` as string | boolean; engine.io-client hands it to Node's http.
  } as unknown as Partial<ManagerOptions & SocketOptions>);
}

export function connected(socket: Socket, timeoutMs = 10_000): Promise<Socket> {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('connect timed out')), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('connect_error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** The next `event` on socket, or a rejection after timeoutMs. */
export function next<T = unknown>(socket: Socket, event: string, timeoutMs = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no "${event}" within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once(event, (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    });
  });
}

/** Emits with an acknowledgement and resolves with it. */
export function ask<T = unknown>(socket: Socket, event: string, ...args: unknown[]): Promise<T> {
  return socket.timeout(5_000).emitWithAck(event, ...args) as Promise<T>;
}

/** Collects every `event` a socket receives, for asserting what did and did not arrive. */
export function collect<T = unknown>(socket: Socket, event: string): T[] {
  const seen: T[] = [];
  socket.on(event, (payload: T) => seen.push(payload));
  return seen;
}

export function closeAll(sockets: Iterable<Socket>): void {
  for (const s of sockets) s.disconnect();
}

export interface PlacedClient {
  socket: Socket;
  /** The node that welcomed it (test/fixtures/echo-app.ts says so on connect). */
  node: string;
}

/** One echo-app client from each source network 127.0.1.1 … 127.0.<nets>.1. */
export async function clientsOnNets(baseUrl: string, nets: number): Promise<PlacedClient[]> {
  const placed: PlacedClient[] = [];
  for (let net = 1; net <= nets; net++) {
    const socket = client(baseUrl, { net });
    const welcome = next<{ node: string }>(socket, 'welcome');
    await connected(socket);
    placed.push({ socket, node: (await welcome).node });
  }
  return placed;
}

/** The p-th percentile (0-100) of some timings, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
