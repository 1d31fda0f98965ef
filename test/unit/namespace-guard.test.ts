// The namespace guard leans on two of socket.io's internals (services/node/namespace-guard.ts):
// a namespace's middleware list `_fns` and its sockets still in them, `_preConnectSockets`. An
// upgrade of socket.io that drops either must fail here, not silently disarm the guard.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { it } from 'node:test';
import Fastify from 'fastify';
import { Server } from 'socket.io';
import { guardNamespaces } from '../../services/node/namespace-guard.ts';

it('finds the socket.io internals it relies on, and runs first in every namespace', () => {
  const io = new Server(createServer());
  const appMiddleware = (_socket: unknown, next: () => void) => next();
  io.use(appMiddleware);
  guardNamespaces(io, Fastify({ logger: false }).log);
  for (const nsp of [io.of('/'), io.of('/other')]) {
    const internals = nsp as unknown as {
      _fns: unknown[];
      _preConnectSockets: unknown;
      _add: unknown;
    };
    assert.equal(typeof internals._add, 'function', 'Namespace#_add is gone');
    assert.ok(Array.isArray(internals._fns), 'Namespace#_fns is gone');
    assert.ok(internals._preConnectSockets instanceof Map, 'Namespace#_preConnectSockets is gone');
    assert.equal(internals._fns.length >= 1, true);
  }
  const root = io.of('/') as unknown as { _fns: unknown[] };
  assert.notEqual(root._fns[0], appMiddleware, 'the guard runs before the application');
  io.close();
});
