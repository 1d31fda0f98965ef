// How nginx reaches the nodes. Over a Unix socket per node a WebSocket message costs the node and
// nginx about a quarter less CPU than over loopback TCP (measured in the room fan-out bench), so
// that is the default wherever nginx's workers can open the sockets. The nodes listen on their
// ports all the same: health checks, status.sh and direct access use those.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../services/node/config.ts';
import type { KitConfig } from './config.ts';
import type { RunDir } from './run-dir.ts';

/** Unix: each node at `socketPath(dir, port)`; TCP: each at its port, and why not Unix. */
export type Upstream = { readonly kind: 'unix' } | { readonly kind: 'tcp'; readonly why: string };

/** Longest Unix socket path Linux takes (sun_path is 108 bytes with its terminating zero). */
const MAX_SOCKET_PATH = 107;

export function socketPath(dir: RunDir, port: number): string {
  return join(dir.sockets, `node-${port}.sock`);
}

/**
 * The socket a node serves besides its port: always, where Linux takes the path, whatever
 * NGINX_UPSTREAM says, so that reload.sh may switch nginx between TCP and sockets under running
 * nodes.
 */
export function nodeSocket(dir: RunDir, port: number): string | undefined {
  const path = socketPath(dir, port);
  return path.length <= MAX_SOCKET_PATH ? path : undefined;
}

/**
 * Why nginx's workers could not open a socket in `dir.sockets`, or undefined if they can. Run as
 * root, nginx gives its workers to user nobody, who needs to pass through every directory above
 * (a home directory of mode 0700 stops it); the kit's own RUN_DIR lets it (run-dir.ts). Not run
 * as root, the workers are this user.
 */
export function unreachableWhy(
  dir: RunDir,
  ports: readonly number[],
  uid = process.getuid?.(),
): string | undefined {
  const tooLong = ports.find((p) => nodeSocket(dir, p) === undefined);
  if (tooLong !== undefined) {
    return `socket paths under RUN_DIR would be ${socketPath(dir, tooLong).length} bytes, longer than Linux allows (${MAX_SOCKET_PATH})`;
  }
  if (uid !== 0) return undefined;
  // Through symbolic links to where the folders really are: their modes are the ones that count.
  let existing = dir.root;
  while (!existsSync(existing)) existing = dirname(existing);
  const real = realpathSync(existing);
  // RUN_DIR itself is the kit's (run-dir.ts opens it); a folder still to be made is made passable.
  for (let path = existing === dir.root ? dirname(real) : real; ; path = dirname(path)) {
    const mode = statSync(path).mode;
    if ((mode & 0o001) === 0) {
      return `nginx's workers (user nobody) cannot pass through ${path} (mode ${(mode & 0o777).toString(8).padStart(4, '0')})`;
    }
    if (path === dirname(path)) return undefined;
  }
}

/** The way in for this configuration: NGINX_UPSTREAM=unix insists, auto falls back to TCP. */
export function chooseUpstream(config: KitConfig, dir: RunDir): Upstream {
  if (config.nginxUpstream === 'tcp') return { kind: 'tcp', why: 'NGINX_UPSTREAM=tcp' };
  const why = unreachableWhy(dir, config.nodePorts);
  if (why === undefined) return { kind: 'unix' };
  if (config.nginxUpstream === 'unix') {
    throw new ConfigError('NGINX_UPSTREAM', 'unix', `${why}; move RUN_DIR or use tcp`);
  }
  return { kind: 'tcp', why };
}

export function describeUpstream(upstream: Upstream): string {
  return upstream.kind === 'unix'
    ? 'nginx reaches the nodes over Unix sockets in RUN_DIR/sockets'
    : `nginx reaches the nodes over TCP (${upstream.why})`;
}
