import { chmodSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer, type Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import fastifySocketIOModule, { type FastifySocketioOptions } from 'fastify-socket.io';
import type { Server } from 'socket.io';
import { instrumentAdmin } from './admin.ts';
import { loadApplication } from './app-loader.ts';
import { peerAllowed, trustBalancers, viaProxy } from './client-address.ts';
import type { NodeConfig } from './config.ts';
import { registerEmitApi } from './emit-api.ts';
import { handshakeLimiter, watchOutput } from './engine-limits.ts';
import { writeBroadcastsDirectly } from './frames.ts';
import { registerHealthRoutes } from './health.ts';
import { pingInStep } from './heartbeat.ts';
import { createMetrics, type NodeMetrics, registerMetricsRoute } from './metrics.ts';
import { guardNamespaces } from './namespace-guard.ts';
import { originAllowed } from './origins.ts';
import { seamlessRecovery } from './recovery.ts';
import { connectRedis, type RedisClients } from './redis.ts';
import { ADAPTER_KEY, heartbeat, SOCKET_OPTIONS } from './socket-options.ts';

declare module 'fastify' {
  interface FastifyInstance {
    io: Server;
  }
}

// fastify-socket.io is CommonJS compiled from ESM: under Node's ESM loader its default import is
// the exports object, and the plugin is that object's `default`.
const fastifySocketIO = (
  fastifySocketIOModule as unknown as { default: FastifyPluginAsync<FastifySocketioOptions> }
).default;

export interface RunningNode {
  readonly app: FastifyInstance;
  readonly io: Server;
  readonly redis: RedisClients;
  readonly metrics: NodeMetrics;
  /** Fails /readyz from now on; the caller then closes the app. */
  startDraining(): void;
}

/**
 * nginx's way in (scripts/kit/upstream.ts): the same HTTP server on a Unix socket, beside the
 * port. Returns the function that starts listening, to be called once the port is ours: a socket
 * file found then was left by a killed node and is safe to remove. Mode 0666: every local user
 * may connect, as they may to the loopback port.
 */
function socketListener(app: FastifyInstance, path: string): () => Promise<void> {
  const server = createServer((socket) => app.server.emit('connection', socket));
  let closed = Promise.resolve();
  // Draining stops taking connections on both at once; closing unlinks the socket file.
  app.addHook('preClose', (done) => {
    if (server.listening) closed = new Promise((resolve) => server.close(() => resolve()));
    done();
  });
  // The port's server waits for its connections to end before the node exits; so does this one
  // (idle keep-alive connections from nginx are closed; requests in flight finish).
  app.addHook('onClose', async () => {
    app.server.closeIdleConnections();
    await closed;
  });
  return async () => {
    rmSync(path, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => app.log.error({ err: error }, 'socket listener error'));
    chmodSync(path, 0o666);
  };
}

/**
 * With BALANCERS set, a connection from any other peer (than this host and the balancers) is
 * closed before a byte of it is read: the node bound to a network address serves nginx only.
 */
function refuseStrangers(app: FastifyInstance, config: NodeConfig): void {
  const restricted = config.balancers !== undefined;
  if (!restricted) return;
  let lastLogged = 0;
  app.server.prependListener('connection', (socket: Socket) => {
    if (peerAllowed(socket.remoteAddress, restricted)) return;
    socket.destroy();
    if (Date.now() - lastLogged > 5000) {
      lastLogged = Date.now();
      app.log.warn({ peer: socket.remoteAddress }, 'connection refused: not in BALANCERS');
    }
  });
}

export async function startNode(config: NodeConfig): Promise<RunningNode> {
  trustBalancers(config.balancers, config.host);
  const app = Fastify({
    logger: { level: config.logLevel, base: { node: config.nodeId, pid: process.pid } },
    // nginx, on loopback, the Unix socket (no address) or a host in BALANCERS, is the only
    // client of a node; its X-Forwarded-For names the user.
    trustProxy: viaProxy,
    bodyLimit: 256 * 1024,
    return503OnClosing: true,
    // A string where a number is expected is a client error, not something to coerce.
    ajv: { customOptions: { coerceTypes: false } },
  });
  let draining = false;
  const metrics = createMetrics(config.nodeId, () => app.io);
  refuseStrangers(app, config);
  const redis = await connectRedis(config, app.log, {
    onError: (client) => metrics.redisErrors.inc({ client }),
    onReady: (client) => metrics.redisReconnects.inc({ client }),
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const invalidMediaType = error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE';
    const status = invalidMediaType ? 400 : (error.statusCode ?? 500);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    if (request.routeOptions.url === '/api/emit') metrics.emitsApi.inc({ status: String(status) });
    return reply.code(status).send({ error: status >= 500 ? 'internal error' : error.message });
  });

  const handshakeAllowed = handshakeLimiter();
  await app.register(fastifySocketIO, {
    ...SOCKET_OPTIONS,
    ...heartbeat(config.heartbeatS),
    adapter: redis.adapter(ADAPTER_KEY),
    // ADAPTER=redis-streams: a client that comes back within RECOVERY_WINDOW gets its id, rooms,
    // data and every event it missed (socket.recovered). Its session is stored in Redis when its
    // connection ends for any reason but its own leaving, so another node can restore it.
    ...(config.recovery
      ? {
          connectionStateRecovery: {
            maxDisconnectionDuration: config.recovery.windowS * 1000,
            skipMiddlewares: true,
          },
        }
      : {}),
    cors: config.allowedOrigins
      ? { origin: [...config.allowedOrigins], credentials: true }
      : undefined,
    allowRequest: (req: IncomingMessage, callback: (err: string | null, ok: boolean) => void) => {
      if (draining) return callback('node is draining', false);
      if (!originAllowed(req, config.allowedOrigins)) return callback('origin not allowed', false);
      if (!handshakeAllowed(req)) {
        metrics.handshakesLimited.inc();
        return callback('too many new sessions from this address', false);
      }
      callback(null, true);
    },
    // fastify-socket.io's default sends every socket a disconnect packet, after which
    // socket.io-client does not reconnect. Closing the transports instead makes clients reconnect,
    // through nginx, to a node that is still up.
    // (Its typing says `done: Function`; a typed callback is accepted at run time just the same.)
    preClose: ((done: () => void) => {
      app.io.engine.close();
      done();
    }) as FastifySocketioOptions['preClose'],
  });
  const io = app.io;
  const streams = redis.streams(ADAPTER_KEY);
  if (streams) seamlessRecovery(io, streams, app.log);
  guardNamespaces(io, app.log);
  watchOutput(io, metrics, app.log);
  pingInStep(io);
  io.on('connection', (socket) => {
    socket.onAny(() => {
      metrics.eventsReceived.count += 1;
    });
  });
  io.of('/').adapter.on('error', (error: Error) => {
    metrics.adapterErrors.inc();
    app.log.warn({ err: error.message }, 'adapter error');
  });
  const adminOutput =
    config.adminPasswordHash === undefined
      ? undefined
      : instrumentAdmin(io, redis.data, config.nodeId, config.adminPasswordHash);
  const packetsSent = metrics.packetsSent;
  writeBroadcastsDirectly(io, (bytes) => {
    packetsSent.count += 1;
    adminOutput?.(bytes);
  });

  const notReadyReason = () => (draining ? 'draining' : redis.notReadyReason());
  registerHealthRoutes(app, { nodeId: config.nodeId, port: config.port }, io, { notReadyReason });
  registerMetricsRoute(app, metrics, config.host);
  registerEmitApi(app, io, config.emitToken, metrics, redis.data, streams);

  const application = await loadApplication(config.appModule);
  await application({ io, app, redis: redis.data, nodeId: config.nodeId, log: app.log });

  const listenOnSocket = config.socketPath && socketListener(app, config.socketPath);
  await app.listen({ host: config.host, port: config.port });
  if (listenOnSocket) await listenOnSocket();
  return {
    app,
    io,
    redis,
    metrics,
    startDraining: () => {
      draining = true;
    },
  };
}
