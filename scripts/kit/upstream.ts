// How nginx reaches the nodes. Over a Unix socket per node a WebSocket message costs the node and
// nginx about a quarter less CPU than over loopback TCP (measured in the room fan-out bench), so
// that is the default wherever nginx's workers can open the sockets. The nodes listen on their
// ports all the same: health checks, status.sh and direct access use those. Nodes on other hosts
// (UPSTREAMS, or a balancer host) are reached over TCP with passive health (REMOTE_HEALTH).
import { existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../services/node/config.ts';
import type { KitConfig, UpstreamNode } from './config.ts';
import type { RunDir } from './run-dir.ts';

/**
 * Unix: each local node at `socketPath(dir, port)`; TCP: each local node at its port, and why not
 * Unix; remote: the nodes UPSTREAMS names (or NODE_HOST:NODE_PORTS on a balancer host).
 */
export type Upstream =
  | { readonly kind: 'unix' }
  | { readonly kind: 'tcp'; readonly why: string }
  | { readonly kind: 'remote'; readonly nodes: readonly UpstreamNode[] };

/**
 * Passive health for nodes reached over a network. A dead host does not refuse a connection, it
 * lets it time out (proxy_connect_timeout, 1 s): after one such failure nginx sends nobody there
 * for fail_timeout, then tries it again with one request. Without it (max_fails=0, right for
 * local nodes, see nginx.conf.template) every request of a client hashed to a lost host waits the
 * connect timeout before moving on. The upstream's `zone` shares that state between the workers.
 * Measured in test/multihost/across-hosts.test.ts ("loses host 1 whole"). Not for new WebSockets:
 * nginx readmits a node it marked down with one trial request per fail_timeout, and a WebSocket
 * counts as a success only when it closes (test/multihost/recovery-across-hosts.test.ts).
 */
export const REMOTE_HEALTH = 'max_fails=1 fail_timeout=5s';

/** Longest Unix socket path Linux takes (sun_path is 108 bytes with its terminating zero). */
const MAX_SOCKET_PATH = 107;

/** Whether Linux takes `path` for a Unix socket: its bytes, not its characters, count. */
export function fitsSocket(path: string): boolean {
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH;
}

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
  return fitsSocket(path) ? path : undefined;
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
    return `socket paths under RUN_DIR would be ${Buffer.byteLength(socketPath(dir, tooLong))} bytes, longer than Linux allows (${MAX_SOCKET_PATH})`;
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

/**
 * The way in for this configuration: the nodes UPSTREAMS names, or on a balancer host the nodes
 * at NODE_HOST; else the local nodes, where NGINX_UPSTREAM=unix insists, auto falls back to TCP.
 */
export function chooseUpstream(config: KitConfig, dir: RunDir): Upstream {
  if (config.upstreams !== undefined) return { kind: 'remote', nodes: config.upstreams };
  if (config.role === 'balancer') {
    const nodes = config.nodePorts.map((port) => ({ host: config.nodeHost, port }));
    return { kind: 'remote', nodes };
  }
  if (config.nginxUpstream === 'tcp') return { kind: 'tcp', why: 'NGINX_UPSTREAM=tcp' };
  const why = unreachableWhy(dir, config.nodePorts);
  if (why === undefined) return { kind: 'unix' };
  if (config.nginxUpstream === 'unix') {
    throw new ConfigError('NGINX_UPSTREAM', 'unix', `${why}; move RUN_DIR or use tcp`);
  }
  return { kind: 'tcp', why };
}

/**
 * nginx's `server` lines for an upstream block, in the order UPSTREAMS lists them. `health`: with
 * passive health for nodes on other hosts (socketio_nodes); without it for every node
 * (socketio_upgrades, which new WebSockets use: see nginx.conf.template for why).
 */
export function upstreamServers(
  config: KitConfig,
  dir: RunDir,
  health: 'passive' | 'none' = 'passive',
): string[] {
  const upstream = chooseUpstream(config, dir);
  if (upstream.kind === 'remote') {
    const marks = health === 'passive' ? REMOTE_HEALTH : 'max_fails=0';
    return upstream.nodes.map((node) => `server ${node.host}:${node.port} ${marks};`);
  }
  const host = config.nodeHost.includes(':') ? `[${config.nodeHost}]` : config.nodeHost;
  return config.nodePorts.map((port) => {
    const address = upstream.kind === 'unix' ? `unix:${socketPath(dir, port)}` : `${host}:${port}`;
    return `server ${address} max_fails=0;`;
  });
}

export function describeUpstream(upstream: Upstream): string {
  switch (upstream.kind) {
    case 'unix':
      return 'nginx reaches the nodes over Unix sockets in RUN_DIR/sockets';
    case 'tcp':
      return `nginx reaches the nodes over TCP (${upstream.why})`;
    case 'remote':
      return `nginx reaches ${upstream.nodes.map((n) => `${n.host}:${n.port}`).join(', ')} over TCP (${REMOTE_HEALTH})`;
  }
}
