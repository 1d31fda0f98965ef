// The kit's own redis-server, used when REDIS_URL is unset: loopback only, a generated password,
// data and append-only file under RUN_DIR/redis so stored chat history survives restarts.
import { join } from 'node:path';
import type { KitConfig } from './config.ts';
import { type RunDir, readSecret, secret } from './run-dir.ts';
import { writeAtomic } from './safe-files.ts';

export const REDIS_BIN = '/usr/bin/redis-server';

const url = (config: KitConfig, password: string) =>
  `redis://:${encodeURIComponent(password)}@127.0.0.1:${config.redisPort}`;

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
