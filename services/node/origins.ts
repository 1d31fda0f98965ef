import type { IncomingMessage } from 'node:http';

/**
 * Decides whether a browser origin may open a Socket.IO session. Engine.IO calls it for every
 * handshake, on polling and on a direct WebSocket upgrade alike, so a foreign page cannot reach
 * the chat over WebSocket where CORS does not apply. Requests without an Origin header come from
 * non-browser clients and are allowed.
 */
export function originAllowed(
  req: IncomingMessage,
  allowed: readonly string[] | undefined,
): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowed !== undefined) return allowed.includes(origin.replace(/\/$/, ''));
  // Same host only: nginx passes the browser's Host header through unchanged ($http_host).
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
