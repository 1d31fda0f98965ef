import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { clientScheme } from './client-address.ts';

/**
 * Decides whether a browser origin may open a Socket.IO session. Engine.IO calls it for every
 * handshake, on polling and on a direct WebSocket upgrade alike, so a foreign page cannot reach
 * the chat over WebSocket where CORS does not apply. Requests without an Origin header come from
 * non-browser clients and are allowed.
 *
 * With ALLOWED_ORIGINS unset, a page may connect when it was served by the kit itself: the same
 * scheme, host and port as the request. Only where the host is an IP address or `localhost`,
 * though: a page on any DNS name can have that name point at the kit (DNS rebinding) and would
 * then send a matching Host and Origin. A kit reached by name lists it in ALLOWED_ORIGINS.
 */
export function originAllowed(
  req: IncomingMessage,
  allowed: readonly string[] | undefined,
): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowed !== undefined) return allowed.includes(origin.replace(/\/$/, ''));
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  // nginx passes the browser's Host header through unchanged ($http_host) and says which scheme
  // the browser used (X-Forwarded-Proto); a node reached directly is plain HTTP.
  const scheme = clientScheme(req);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  return (
    url.protocol === `${scheme}:` &&
    url.host === req.headers.host &&
    (isIP(hostname) !== 0 || hostname === 'localhost')
  );
}
