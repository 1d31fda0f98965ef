// The kit's own redis-server, used when REDIS_URL is unset: loopback only, a generated password,
// data and append-only file under RUN_DIR/redis so stored chat history survives restarts.
//
// The nodes reach it over a Unix socket in RUN_DIR/redis (its loopback port stays, for status.sh,
// emit.sh, redis-cli and the tests). Every publication crosses Redis twice (the publishing node's
// PUBLISH, then a copy to each node), and a Unix socket costs the writer less than loopback TCP,
// whose sender also runs the receiver's side of the network stack: measured with
// `npm run bench:ab` (600 subscribers over 100 rooms, 2,000 publications/s; README Performance).
import { join } from 'node:path';
import type { KitConfig } from './config.ts';
import { type RunDir, readSecret, secret } from './run-dir.ts';
import { writeAtomic } from './safe-files.ts';
import { fitsSocket } from './upstream.ts';

export const REDIS_BIN = '/usr/bin/redis-server';

const url = (config: KitConfig, password: string) =>
  `redis://:${encodeURIComponent(password)}@127.0.0.1:${config.redisPort}`;

/** Where the kit's own Redis listens besides its port, unless RUN_DIR is too deep for a socket. */
export function ownRedisSocket(dir: RunDir): string | undefined {
  const path = join(dir.redis, 'redis.sock');
  return fitsSocket(path) ? path : undefined;
}

/** How the nodes reach the kit's own Redis: its Unix socket where there is one, else its port. */
export function ownRedisNodeUrl(config: KitConfig, dir: RunDir): string {
  const socket = ownRedisSocket(dir);
  if (socket === undefined) return ownRedisUrl(config, dir);
  const password = encodeURIComponent(secret(join(dir.redis, 'password')));
  // Each segment encoded: node-redis decodes the path, and a `?` or `#` in it would end it.
  return `unix://:${password}@${socket.split('/').map(encodeURIComponent).join('/')}`;
}

/** The kit's own Redis, making its password on first use (up.sh). */
export function ownRedisUrl(config: KitConfig, dir: RunDir): string {
  return url(config, secret(join(dir.redis, 'password')));
}

/** The kit's own Redis if it was ever started here; looking makes nothing (status, emit). */
export function existingRedisUrl(config: KitConfig, dir: RunDir): string | undefined {
  const password = readSecret(join(dir.redis, 'password'));
  return password === undefined ? undefined : url(config, password);
}

export function writeRedisConf(config: KitConfig, dir: RunDir): string {
  const password = secret(join(dir.redis, 'password'));
  const conf = join(dir.redis, 'redis.conf');
  const lines = [
    '# Written by scripts/up.sh on every start; edits here are lost.',
    'bind 127.0.0.1',
    'protected-mode yes',
    `port ${config.redisPort}`,
    ...socketLines(dir),
    `requirepass ${password}`,
    `dir ${dir.redis}`,
    'daemonize no',
    `pidfile ${join(dir.redis, 'redis.pid')}`,
    // Logs go to stdout, which the supervisor points at RUN_DIR/logs/redis.log.
    'logfile ""',
    // Every acknowledged write reaches the append-only file within a second.
    'appendonly yes',
    'appendfsync everysec',
    'save 3600 1 300 100 60 10000',
    // Adapter subscribers must never be cut off for falling behind during a burst.
    'client-output-buffer-limit pubsub 256mb 128mb 60',
    'tcp-keepalive 60',
    'maxclients 10000',
    // A full Redis refuses writes (the chat answers `storage full`) rather than silently
    // evicting sessions or messages someone relies on.
    `maxmemory ${config.redisMaxmemory}`,
    'maxmemory-policy noeviction',
  ];
  writeAtomic(conf, `${lines.join('\n')}\n`, 0o600);
  return conf;
}

/** How the nodes reach the kit's own Redis, for up.sh's summary. */
export function describeOwnRedisWay(config: KitConfig, dir: RunDir): string {
  return ownRedisSocket(dir) === undefined
    ? `the nodes reach it on port ${config.redisPort}: its socket's path would pass 107 bytes`
    : `the nodes reach it over ${join(dir.redis, 'redis.sock')}`;
}

/** Only Redis's own user (who the nodes run as too) may connect to the socket. */
function socketLines(dir: RunDir): string[] {
  const socket = ownRedisSocket(dir);
  return socket === undefined ? [] : [`unixsocket ${socket}`, 'unixsocketperm 700'];
}
