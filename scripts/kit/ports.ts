import { createServer } from 'node:net';

/** Whether `port` can be listened on at `host` right now. */
export function portFree(port: number, host = '0.0.0.0'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * `count` free ports, at random below the kernel's ephemeral range (32768 and up here): a port in
 * that range can be taken by any outgoing connection between the check and the listen. For
 * tests and the bench, which run kits side by side.
 */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) {
    const port = 10_000 + Math.floor(Math.random() * 22_000);
    if (!ports.has(port) && (await portFree(port))) ports.add(port);
  }
  return [...ports];
}
