import type { FastifyInstance } from 'fastify';
import type { Server } from 'socket.io';

export interface Readiness {
  /** undefined when the node can serve, else why not. */
  notReadyReason(): string | undefined;
}

/**
 * Route option for what probes and scrapers ask for (/healthz, /readyz, /metrics): the supervisor
 * probes every node each second and monitors scrape on their own clock, so at the default
 * LOG_LEVEL (info) their request lines drowned the node's log (383 bytes a second of an idle
 * node's, measured). Their warnings and errors are still logged; nginx does not log them either.
 */
export const QUIET = { logLevel: 'warn' } as const;

export function registerHealthRoutes(
  app: FastifyInstance,
  identity: { nodeId: string; port: number },
  io: Server,
  readiness: Readiness,
): void {
  app.get('/healthz', QUIET, async () => ({
    status: 'ok',
    node: identity.nodeId,
    port: identity.port,
    pid: process.pid,
    connections: io.engine.clientsCount,
  }));

  app.get('/readyz', QUIET, async (_request, reply) => {
    const reason = readiness.notReadyReason();
    if (reason !== undefined) {
      reply.code(503);
      return { status: 'unavailable', node: identity.nodeId, reason };
    }
    return { status: 'ready', node: identity.nodeId };
  });
}
