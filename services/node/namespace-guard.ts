// One socket per namespace per Engine.IO connection, for every namespace.
//
// Socket.IO records a namespace on the client only once the namespace's middlewares have all
// called next(). With an async middleware (the chat's reads Redis) several CONNECT packets sent
// together each become a socket: 100 CONNECTs on one WebSocket made 100 chat sessions, past
// nginx's per-address handshake limit. And a middleware that never calls next() leaves its
// socket in the namespace for good (admin-ui's did). This guard runs first in every namespace:
// a second CONNECT to a namespace that the connection already joined, or is joining, is refused;
// a connection that sends CONNECTs faster than any client would is closed; and a socket still in
// the middlewares after MIDDLEWARE_LIMIT_MS is dropped with its connection.
import type { FastifyBaseLogger } from 'fastify';
import type { Namespace, Server, Socket } from 'socket.io';
import { closeNow } from './engine-limits.ts';
import { TokenBucket } from './rate-limit.ts';

/** CONNECT packets one Engine.IO connection may send at once, and how often after that: a
 * client sends one per namespace, and socket.io-client opens a new connection to retry a refused
 * one; an application that joins and leaves namespaces on one connection gets one every 6 s. */
const CONNECTS = { burst: 10, perSecond: 1 / 6 } as const;
/** Longest a socket may wait in the namespace's middlewares before its connection is closed. */
const MIDDLEWARE_LIMIT_MS = 10_000;

type Middleware = (socket: Socket, next: (error?: Error) => void) => void;

/**
 * socket.io 4.8 keeps the middlewares in `_fns` and sockets still in them in `_preConnectSockets`;
 * neither is public API. test/unit/namespace-guard.test.ts fails if either goes away.
 */
interface NamespaceInternals {
  _fns: Middleware[];
  _preConnectSockets: Map<string, Socket>;
  _remove(socket: Socket): void;
  /** Takes a CONNECT: restores a session (connection state recovery) or runs the middlewares. */
  _add(client: { conn: object }, auth: unknown, fn?: unknown): unknown;
}

const internals = (nsp: Namespace) => nsp as unknown as NamespaceInternals;

const inMiddlewares = (socket: Socket) => internals(socket.nsp)._preConnectSockets.has(socket.id);

interface ConnectionClaims {
  /** CONNECTs this connection may still send (see CONNECTS). */
  readonly connects: TokenBucket;
  /** The socket per namespace name that this connection opened last. */
  sockets: Map<string, Socket>;
}

export function guardNamespaces(io: Server, log: FastifyBaseLogger): void {
  const claims = new WeakMap<object, ConnectionClaims>();
  const waiting = new Map<Socket, number>();

  const claimsOf = (conn: object): ConnectionClaims => {
    const mine = claims.get(conn) ?? {
      connects: new TokenBucket(CONNECTS.perSecond, CONNECTS.burst),
      sockets: new Map(),
    };
    claims.set(conn, mine);
    return mine;
  };

  const guard: Middleware = (socket, next) => {
    const mine = claimsOf(socket.conn);
    const earlier = mine.sockets.get(socket.nsp.name);
    if (earlier !== undefined && (earlier.connected || inMiddlewares(earlier))) {
      next(new Error('this connection already has a socket in this namespace'));
      return;
    }
    mine.sockets.set(socket.nsp.name, socket);
    waiting.set(socket, Date.now());
    next();
  };

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [socket, since] of waiting) {
      if (!inMiddlewares(socket)) waiting.delete(socket);
      else if (now - since > MIDDLEWARE_LIMIT_MS) {
        waiting.delete(socket);
        log.warn({ namespace: socket.nsp.name }, 'socket stuck in middleware; closing');
        internals(socket.nsp)._remove(socket);
        closeNow(socket.conn);
      }
    }
  }, 1000);
  sweep.unref();

  const protect = (nsp: Namespace) => {
    const inside = internals(nsp);
    // First, whatever was registered before (a child of a dynamic namespace copies its parent's).
    if (!inside._fns.includes(guard)) inside._fns.unshift(guard);
    // CONNECTs are counted as they arrive, before anything else: with connection state recovery
    // on (ADAPTER=redis-streams) a CONNECT carrying a session id is looked up in Redis before any
    // middleware runs, and counting in the guard let one connection make Redis work per packet.
    const add = inside._add.bind(nsp);
    inside._add = (client, auth, fn) => {
      if (claimsOf(client.conn).connects.take()) return add(client, auth, fn);
      log.warn({ namespace: nsp.name }, 'too many CONNECT packets; closing');
      closeNow(client.conn as never);
    };
  };
  protect(io.of('/'));
  io.on('new_namespace', protect);
}
