import type { IncomingMessage } from 'node:http';

/**
 * The address of the client behind a request. nginx, the only way in from outside, reaches a
 * node over a Unix socket (no address) or loopback and names the client in X-Real-IP
 * (nginx/nginx.conf.template); from anywhere else the peer itself is the client.
 */
export function clientAddress(req: IncomingMessage): string {
  const peer = req.socket.remoteAddress;
  if (peer === undefined || peer === '127.0.0.1' || peer === '::1' || peer === '::ffff:127.0.0.1') {
    const forwarded = req.headers['x-real-ip'];
    if (typeof forwarded === 'string' && forwarded !== '') return forwarded;
  }
  return peer ?? 'unix';
}

/** Whether a request came from this host itself, not through nginx on behalf of someone else. */
export function fromLoopback(req: IncomingMessage): boolean {
  const address = clientAddress(req);
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}
