import type { FastifyInstance } from 'fastify';
import type { Server } from 'socket.io';

export interface Readiness {
  /** undefined when the node can serve, else why not. */
  notReadyReason(): string | undefined;
}

export function registerHealthRoutes(
  app: FastifyInstance,
  identity: { nodeId: string; port: number },
  io: Server,
  readiness: Readiness,
): void {
  app.get('/healthz', async () => ({
    status: 'ok',
    node: identity.nodeId,
    port: identity.port,
    pid: process.pid,
    connections: io.engine.clientsCount,
  }));

  app.get('/readyz', async (_request, reply) => {
    const reason = readiness.notReadyReason();
    if (reason !== undefined) {
      reply.code(503);
      return { status: 'unavailable', node: identity.nodeId, reason };
    }
    return { status: 'ready', node: identity.nodeId };
  });
}
