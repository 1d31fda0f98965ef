// The browser client, served by every node (nginx proxies `/` to them). Files are read once at
// start; each answer carries a strong ETag, so a reload costs a 304.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

const CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function serveStatic(app: FastifyInstance, dir: string): void {
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    // The page itself is revalidated on every load, so a deploy shows at once; its assets are
    // cached for an hour and revalidated by ETag after that.
    const cacheControl = name === 'index.html' ? 'no-cache' : 'public, max-age=3600';
    const handler = async (
      request: { headers: Record<string, unknown> },
      reply: import('fastify').FastifyReply,
    ) => {
      reply.header('etag', etag).header('cache-control', cacheControl);
      reply.header('x-content-type-options', 'nosniff');
      // Defence in depth behind textContent rendering: no inline or foreign script can run.
      reply.header('content-security-policy', CSP);
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.type(type).send(body);
    };
    app.get(`/${name}`, handler);
    if (name === 'index.html') app.get('/', handler);
  }
}
