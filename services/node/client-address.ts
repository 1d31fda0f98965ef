import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** This host's own addresses, as Node reports a peer. */
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** The balancers on other hosts (BALANCERS); set once at start. A BlockList compares addresses,
 * not their spelling (`fd00::1` is `fd00:0:0::1`). */
let balancers = new BlockList();

const family = (address: string) => (isIP(address) === 6 ? 'ipv6' : 'ipv4');
const isBalancer = (peer: string) => {
  const address = plain(peer);
  return isIP(address) !== 0 && balancers.check(address, family(address));
};

/** IPv4 peers arrive as `::ffff:a.b.c.d` on a dual-stack socket: one form for comparing. */
export const plain = (address: string) => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');

/**
 * Tells this module which peers are the kit's balancers (startNode does): those on other hosts
 * (BALANCERS), and this host on the address the node binds, which its own nginx and probes use.
 */
export function trustBalancers(addresses: readonly string[] | undefined, ownAddress: string): void {
  balancers = new BlockList();
  for (const address of [...(addresses ?? []), ownAddress].map(plain)) {
    if (isIP(address) !== 0) balancers.addAddress(address, family(address));
  }
}

/**
 * Whether the peer may speak for the client: nginx, the only way in from outside, reaches a node
 * over a Unix socket (no address), loopback, or from a balancer host named in BALANCERS, and names
 * the client in X-Real-IP and its scheme in X-Forwarded-Proto (nginx/nginx.conf.template). Any
 * other peer is the client itself.
 */
export function viaProxy(peer: string | undefined): boolean {
  return peer === undefined || LOOPBACK.has(peer) || isBalancer(peer);
}

/**
 * Whether a peer may connect to the node at all: with BALANCERS set, only this host and the
 * balancers; unset, anyone who can reach NODE_HOST.
 */
export function peerAllowed(peer: string | undefined, restricted: boolean): boolean {
  return !restricted || peer === undefined || LOOPBACK.has(peer) || isBalancer(peer);
}

/** The address of the client behind a request. */
export function clientAddress(req: IncomingMessage): string {
  const peer = req.socket.remoteAddress;
  const forwarded = req.headers['x-real-ip'];
  if (viaProxy(peer) && typeof forwarded === 'string' && forwarded !== '') return forwarded;
  return peer ?? 'unix';
}

/** Whether a request came from this host itself, not through nginx on behalf of someone else. */
export function fromLoopback(req: IncomingMessage): boolean {
  return LOOPBACK.has(clientAddress(req));
}

/** The scheme the client used: what nginx says, or plain HTTP when reached directly. */
export function clientScheme(req: IncomingMessage): string {
  const forwarded = req.headers['x-forwarded-proto'];
  return viaProxy(req.socket.remoteAddress) && typeof forwarded === 'string' ? forwarded : 'http';
}
