// The operator's configuration: the one place that reads the kit's variables (the environment
// over a .env file at the root). Every script receives the frozen KitConfig; a bad value stops
// the start with a ConfigError that names the variable and the value. What a node needs of it is
// handed over by the supervisor (services/node/config.ts, HANDOVER).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import {
  type AdapterName,
  ConfigError,
  isPlaceholder,
  parseAddresses,
  parseCount,
  parseLogLevel,
  parseOrigins,
  parsePort,
  parseRedisCluster,
  parseRedisUrl,
  RECOVERY_FIELDS,
  type Recovery,
  ROOT,
  recoveryFrom,
} from '../../services/node/config.ts';
import { HEARTBEAT_S } from '../../services/node/socket-options.ts';

interface Option {
  /** The default, as the README shows it; `undefined` means unset. */
  default: string | undefined;
  doc: string;
}

/** Every variable an operator may set. The README's configuration table is checked against it. */
export const OPTIONS = {
  PORT: { default: '3000', doc: 'the one public port: nginx listens here' },
  NODE_PORTS: {
    default: '6001,6002,6003,6004',
    doc: 'one node per port, each bound to `NODE_HOST`',
  },
  KIT_ROLE: {
    default: 'all',
    doc: 'what this host runs: `all` (Redis unless `REDIS_URL`/`REDIS_CLUSTER`, the nodes and nginx), `nodes` (only the nodes; Redis must be outside, `EMIT_TOKEN` set), `balancer` (only nginx, in front of `UPSTREAMS`); `up.sh --role <role>` is the same',
  },
  NODE_HOST: {
    default: '127.0.0.1',
    doc: 'the address the nodes bind (an IP address); on a host of role `nodes` its private address',
  },
  UPSTREAMS: {
    default: undefined,
    doc: 'the nodes nginx spreads over, comma-separated `host:port` (may name nodes on other hosts; every balancer must list the same in the same order; addresses rather than names, which nginx resolves at each start or reload); unset: the local nodes',
  },
  BALANCERS: {
    default: undefined,
    doc: "comma-separated IP addresses of the balancers: the nodes accept connections only from these and this host, and trust their `X-Real-IP`; unset: any peer may connect, and only this host's nginx is trusted",
  },
  REDIS_URL: {
    default: undefined,
    doc: 'an existing Redis; unset means `up.sh` starts its own redis-server on loopback, with a password, keeping its data under `RUN_DIR`',
  },
  REDIS_CLUSTER: {
    default: undefined,
    doc: 'a Redis Cluster, comma-separated seed URLs (`redis://[:password@]host:port`); the nodes then use the sharded adapter and a cluster client. Exclusive with `REDIS_URL`; `rediss://` (TLS) is refused for now',
  },
  ADAPTER: {
    default: 'redis',
    doc: '`redis` (pub/sub adapter), `redis-sharded` (sharded pub/sub, Redis 7; implied by `REDIS_CLUSTER`), `redis-streams` (Redis Streams adapter with connection state recovery: a client back within `RECOVERY_WINDOW` gets what it missed)',
  },
  RECOVERY_WINDOW: {
    default: '120',
    doc: 'seconds a client may be away and still recover its session and missed events (`ADAPTER=redis-streams` only), 1 to 3600',
  },
  STREAM_MAXLEN: {
    default: '10000',
    doc: 'entries each stream keeps (`ADAPTER=redis-streams` only; trimmed approximately): a client recovers only if what it missed is still there, so size it to `RECOVERY_WINDOW` × broadcasts per second; 100 to 10,000,000',
  },
  STREAM_COUNT: {
    default: '1',
    doc: "streams the namespaces are spread over (`ADAPTER=redis-streams` only; each namespace stays on one stream, in order), so that they spread over a Redis Cluster's shards; 1 to 64",
  },
  REDIS_PORT: {
    default: '6380',
    doc: "loopback port of the kit's own redis-server (only used when `REDIS_URL` is unset): `status.sh`, `emit.sh` and `redis-cli` use it; the nodes use its Unix socket, `RUN_DIR/redis/redis.sock`, where that path fits in 107 bytes",
  },
  RUN_DIR: {
    default: '.run',
    doc: 'rendered configs, pid files, logs, Redis data; git-ignored',
  },
  APP_MODULE: {
    default: 'services/chat/index.ts',
    doc: 'path of the application module every node loads (the bundled chat by default)',
  },
  EMIT_TOKEN: {
    default: undefined,
    doc: 'bearer token for `POST /api/emit`; generated into `RUN_DIR/emit-token` when unset',
  },
  ADMIN_PASSWORD: {
    default: undefined,
    doc: 'password (12 characters or more) of user `admin` for the Socket.IO Admin UI (namespace `/admin`); unset: the Admin UI is off',
  },
  ALLOWED_ORIGINS: {
    default: undefined,
    doc: 'comma-separated browser origins allowed to connect (checked on WebSocket upgrades too); unset allows pages the kit served itself when it is reached by IP address or `localhost` (a DNS name must be listed: DNS rebinding)',
  },
  NGINX_WORKERS: {
    default: 'auto',
    doc: 'nginx `worker_processes`: `auto` (one per core, and more, up to 16 in all, to hold 50,000 connections under the open-files limit: each worker proxies up to about 9,900 under a 20,000 limit, so 6 workers) or a number',
  },
  NGINX_UPSTREAM: {
    default: 'auto',
    doc: "how nginx reaches the nodes: `unix` (a socket per node in `RUN_DIR/sockets`; about a quarter less CPU per WebSocket message than loopback TCP), `tcp` (the nodes' ports), or `auto` (`unix` when nginx's workers can reach `RUN_DIR`, else `tcp`, saying why)",
  },
  REDIS_MAXMEMORY: {
    default: '512mb',
    doc: "memory limit of the kit's own redis-server (`maxmemory`, with `noeviction`: when full, writes are refused and chat actions answer `storage full`, nothing stored is dropped)",
  },
  TLS_CERT: {
    default: undefined,
    doc: 'PEM certificate (chain) file; with `TLS_KEY`, nginx serves HTTPS and WSS on `PORT` (TLS 1.2 and 1.3, HTTP/2 for plain requests) and redirects plain HTTP there to HTTPS',
  },
  TLS_KEY: {
    default: undefined,
    doc: 'PEM private key file of `TLS_CERT`',
  },
  HEARTBEAT: {
    default: '2',
    doc: "seconds between a node's pings to each client (Engine.IO `pingInterval`; a pong is awaited twice as long): a silent node or client is noticed within 3 × this. 2 keeps the 10 s a lost host's clients take to move; idle connections then cost the nodes and nginx about a quarter of a core per 10,000 (measured at 10,000, the pings of a node going out together every 50 ms), so many mostly idle clients are cheaper with a longer one, such as 15; 1 to 15 (nginx's `proxy_read_timeout`, 60 s, must pass a ping and its pong)",
  },
  LOG_LEVEL: {
    default: 'info',
    doc: 'pino log level of the nodes: fatal, error, warn, info, debug, trace',
  },
} as const satisfies Record<string, Option>;

export type OptionName = keyof typeof OPTIONS;
type Env = Record<string, string | undefined>;

export type Role = 'all' | 'nodes' | 'balancer';

/** A node nginx proxies to, as UPSTREAMS names it. */
export interface UpstreamNode {
  readonly host: string;
  readonly port: number;
}

export interface KitConfig {
  readonly port: number;
  readonly nodePorts: readonly number[];
  readonly role: Role;
  /** The address the nodes bind. */
  readonly nodeHost: string;
  /** The nodes nginx proxies to; undefined: this host's own nodes (NODE_PORTS on NODE_HOST). */
  readonly upstreams: readonly UpstreamNode[] | undefined;
  /** Peers the nodes accept and trust besides this host; undefined: any peer, trust loopback. */
  readonly balancers: readonly string[] | undefined;
  readonly redisUrl: string | undefined;
  /** Seed URLs of a Redis Cluster; set, the kit starts no Redis and the nodes use a cluster client. */
  readonly redisCluster: readonly string[] | undefined;
  readonly adapter: AdapterName;
  /** Connection state recovery with ADAPTER=redis-streams; undefined with the other adapters. */
  readonly recovery: Recovery | undefined;
  readonly redisPort: number;
  /** maxmemory of the kit's own Redis, as redis.conf takes it (`512mb`). */
  readonly redisMaxmemory: string;
  readonly runDir: string;
  readonly appModule: string;
  readonly emitToken: string | undefined;
  readonly adminPassword: string | undefined;
  readonly allowedOrigins: readonly string[] | undefined;
  readonly nginxWorkers: 'auto' | number;
  readonly nginxUpstream: 'auto' | 'unix' | 'tcp';
  /** Certificate and key files nginx serves TLS with; unset: plain HTTP. */
  readonly tls: { readonly cert: string; readonly key: string } | undefined;
  /** Seconds between pings (HEARTBEAT). */
  readonly heartbeatS: number;
  readonly logLevel: string;
}

/** The process environment over the `.env` file at the root (the environment wins). */
export function readEnv(env: Env = process.env, root = ROOT): Env {
  const file = resolve(root, '.env');
  const fromFile = existsSync(file) ? parseEnv(readFileSync(file, 'utf8')) : {};
  return { ...fromFile, ...env };
}

function value(env: Env, name: OptionName): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? OPTIONS[name].default : raw;
}

/** A path nginx.conf takes as it is (no quoting there): the characters RUN_DIR may hold. */
const CONFIG_PATH = /^[\w./+@%=,:-]+$/;

function parseTls(env: Env, root: string): KitConfig['tls'] {
  const cert = value(env, 'TLS_CERT');
  const key = value(env, 'TLS_KEY');
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined) throw new ConfigError('TLS_CERT', cert, 'is needed with TLS_KEY');
  if (key === undefined) throw new ConfigError('TLS_KEY', key, 'is needed with TLS_CERT');
  const read = (name: 'TLS_CERT' | 'TLS_KEY', raw: string): string => {
    const path = resolve(root, raw);
    if (!CONFIG_PATH.test(path)) {
      throw new ConfigError(name, raw, 'may hold letters, digits and _ . / + @ % = , : - only');
    }
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (error) {
      throw new ConfigError(name, raw, `cannot be read: ${(error as Error).message}`);
    }
    return pem;
  };
  const certPem = read('TLS_CERT', cert);
  const keyPem = read('TLS_KEY', key);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch {
    throw new ConfigError('TLS_CERT', cert, 'is not a PEM certificate');
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(keyPem))) {
      throw new ConfigError('TLS_KEY', key, 'is not the key of TLS_CERT');
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError('TLS_KEY', key, 'is not a PEM private key');
  }
  return Object.freeze({ cert: resolve(root, cert), key: resolve(root, key) });
}

/** A secret an operator set, or undefined: long enough and not copied from an example. */
function secretValue(env: Env, name: 'EMIT_TOKEN' | 'ADMIN_PASSWORD', minLength: number) {
  const secret = value(env, name);
  if (secret === undefined) return undefined;
  if (secret.length < minLength) {
    throw new ConfigError(name, '(hidden)', `must be at least ${minLength} characters`);
  }
  if (isPlaceholder(secret)) {
    throw new ConfigError(
      name,
      '(hidden)',
      'is an example placeholder or has fewer than 8 different characters; use a random string (openssl rand -hex 24)',
    );
  }
  return secret;
}

/** The value of `--role <role>` (or `--role=<role>`) among a command's arguments. */
export function roleArgument(args: readonly string[]): string | undefined {
  const at = args.findIndex((a) => a === '--role' || a.startsWith('--role='));
  if (at === -1) return undefined;
  const arg = args[at] as string;
  const role = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[at + 1];
  if (role === undefined || role === '') {
    throw new ConfigError('KIT_ROLE', '', '--role needs a value: all, nodes or balancer');
  }
  return role;
}

/** Whether this host runs the kit's own redis-server. */
export function ownRedis(
  role: Role,
  redisUrl: string | undefined,
  redisCluster: readonly string[] | undefined,
): boolean {
  return role === 'all' && redisUrl === undefined && redisCluster === undefined;
}

/**
 * `host:port,host:port`: IPv4 and IPv6 (in brackets) addresses or host names, each listed once.
 * nginx resolves a name when it starts or reloads; one that resolves to several addresses becomes
 * several servers, in DNS's order, which two balancers may not share: addresses are safer.
 */
function parseUpstreams(raw: string | undefined): readonly UpstreamNode[] | undefined {
  if (raw === undefined) return undefined;
  const seen = new Set<string>();
  const nodes = raw.split(',').map((entry) => {
    const item = entry.trim();
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d+)$/.exec(item);
    if (!match) throw new ConfigError('UPSTREAMS', raw, `"${item}" is not host:port`);
    const [, host, port] = match as unknown as [string, string, string];
    // nginx reads `server unix:…` as a Unix socket path, whatever follows.
    if (host.toLowerCase() === 'unix') {
      throw new ConfigError(
        'UPSTREAMS',
        raw,
        `"${item}" is not host:port (nginx reads unix: as a socket path)`,
      );
    }
    if (host.startsWith('[') && isIP(host.slice(1, -1)) !== 6) {
      throw new ConfigError('UPSTREAMS', raw, `"${item}" is not an IPv6 address in brackets`);
    }
    const node = { host, port: parsePort('UPSTREAMS', port, raw) };
    const key = `${node.host}:${node.port}`;
    if (seen.has(key)) throw new ConfigError('UPSTREAMS', raw, `${key} is listed twice`);
    seen.add(key);
    return Object.freeze(node);
  });
  return Object.freeze(nodes);
}

/** RECOVERY_WINDOW, STREAM_MAXLEN, STREAM_COUNT: only with the streams adapter, which uses them. */
function parseRecovery(env: Env, adapter: AdapterName): Recovery | undefined {
  const names = Object.values(RECOVERY_FIELDS).map((f) => f.variable);
  if (adapter !== 'redis-streams') {
    const set = names.find((name) => env[name]?.trim());
    if (set)
      throw new ConfigError(set, env[set], `needs ADAPTER=redis-streams (ADAPTER is "${adapter}")`);
    return undefined;
  }
  return recoveryFrom((_field, variable) => ({
    name: variable,
    raw: value(env, variable as OptionName) as string,
  }));
}

function parseAdapter(env: Env, cluster: boolean): AdapterName {
  const set = env.ADAPTER?.trim() ? (env.ADAPTER.trim() as string) : undefined;
  if (set === undefined) return cluster ? 'redis-sharded' : 'redis';
  if (set !== 'redis' && set !== 'redis-sharded' && set !== 'redis-streams') {
    throw new ConfigError('ADAPTER', set, 'expected "redis", "redis-sharded" or "redis-streams"');
  }
  if (cluster && set === 'redis') {
    throw new ConfigError(
      'ADAPTER',
      set,
      'a Redis Cluster needs "redis-sharded" (PUBLISH on a cluster reaches every shard)',
    );
  }
  return set;
}

export function loadKitConfig(env: Env = readEnv(), root = ROOT): KitConfig {
  const port = parsePort('PORT', value(env, 'PORT') as string);

  const rawPorts = value(env, 'NODE_PORTS') as string;
  const parts = rawPorts.split(',').map((p) => p.trim());
  if (parts.some((p) => p === ''))
    throw new ConfigError('NODE_PORTS', rawPorts, 'empty entry in the list');
  const nodePorts = parts.map((p) => parsePort('NODE_PORTS', p, rawPorts));
  const seen = new Set<number>();
  for (const p of nodePorts) {
    if (seen.has(p)) throw new ConfigError('NODE_PORTS', rawPorts, `port ${p} is listed twice`);
    seen.add(p);
  }
  if (seen.has(port)) throw new ConfigError('NODE_PORTS', rawPorts, `port ${port} is also PORT`);

  const role = value(env, 'KIT_ROLE') as string;
  if (role !== 'all' && role !== 'nodes' && role !== 'balancer') {
    throw new ConfigError('KIT_ROLE', role, 'expected "all", "nodes" or "balancer"');
  }
  const nodeHost = value(env, 'NODE_HOST') as string;
  if (isIP(nodeHost) === 0) {
    throw new ConfigError('NODE_HOST', nodeHost, 'expected an IP address like 10.0.0.11');
  }
  const upstreams = parseUpstreams(value(env, 'UPSTREAMS'));
  const rawBalancers = value(env, 'BALANCERS');
  const balancers =
    rawBalancers === undefined ? undefined : parseAddresses('BALANCERS', rawBalancers);

  const rawRedisUrl = value(env, 'REDIS_URL');
  const redisUrl = rawRedisUrl === undefined ? undefined : parseRedisUrl('REDIS_URL', rawRedisUrl);
  const rawCluster = value(env, 'REDIS_CLUSTER');
  const redisCluster =
    rawCluster === undefined ? undefined : parseRedisCluster('REDIS_CLUSTER', rawCluster);
  if (redisUrl !== undefined && redisCluster !== undefined) {
    throw new ConfigError('REDIS_CLUSTER', rawCluster, 'is exclusive with REDIS_URL: set one');
  }
  if (role === 'nodes' && redisUrl === undefined && redisCluster === undefined) {
    throw new ConfigError(
      'KIT_ROLE',
      role,
      'a nodes host starts no Redis: set REDIS_URL or REDIS_CLUSTER to the Redis every host shares',
    );
  }
  const adapter = parseAdapter(env, redisCluster !== undefined);
  const recovery = parseRecovery(env, adapter);
  const redisPort = parsePort('REDIS_PORT', value(env, 'REDIS_PORT') as string);
  if (ownRedis(role, redisUrl, redisCluster) && (redisPort === port || seen.has(redisPort))) {
    throw new ConfigError('REDIS_PORT', String(redisPort), 'collides with PORT or NODE_PORTS');
  }

  const rawRunDir = value(env, 'RUN_DIR') as string;
  // RUN_DIR is written into nginx.conf and redis.conf: a character either would read as syntax
  // (space, quote, semicolon, brace, `$`, `#`, a control character) could inject directives.
  if (!CONFIG_PATH.test(rawRunDir)) {
    throw new ConfigError(
      'RUN_DIR',
      rawRunDir,
      'may hold letters, digits and _ . / + @ % = , : - only (it is written into nginx.conf and redis.conf)',
    );
  }
  const runDir = resolve(root, rawRunDir);
  const rawApp = value(env, 'APP_MODULE') as string;
  const appModule = isAbsolute(rawApp) ? rawApp : resolve(root, rawApp);
  if (!existsSync(appModule))
    throw new ConfigError('APP_MODULE', rawApp, `no such file: ${appModule}`);

  const emitToken = secretValue(env, 'EMIT_TOKEN', 16);
  if (role === 'nodes' && emitToken === undefined) {
    throw new ConfigError(
      'EMIT_TOKEN',
      undefined,
      'must be set on a nodes host: every nodes host must accept the same token',
    );
  }
  const adminPassword = secretValue(env, 'ADMIN_PASSWORD', 12);

  const redisMaxmemory = (value(env, 'REDIS_MAXMEMORY') as string).toLowerCase();
  const memory = /^(\d+)(kb|mb|gb)?$/.exec(redisMaxmemory);
  const units = { kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30 } as const;
  if (
    !memory ||
    Number(memory[1]) * (memory[2] ? units[memory[2] as keyof typeof units] : 1) < 2 ** 23
  ) {
    throw new ConfigError(
      'REDIS_MAXMEMORY',
      redisMaxmemory,
      'expected a size of at least 8mb, like 512mb or 2gb',
    );
  }

  const rawWorkers = value(env, 'NGINX_WORKERS') as string;
  let nginxWorkers: 'auto' | number = 'auto';
  if (rawWorkers !== 'auto') {
    nginxWorkers = Number(rawWorkers);
    if (!Number.isInteger(nginxWorkers) || nginxWorkers < 1 || nginxWorkers > 64) {
      throw new ConfigError(
        'NGINX_WORKERS',
        rawWorkers,
        'expected "auto" or a number from 1 to 64',
      );
    }
  }

  const nginxUpstream = value(env, 'NGINX_UPSTREAM') as string;
  if (nginxUpstream !== 'auto' && nginxUpstream !== 'unix' && nginxUpstream !== 'tcp') {
    throw new ConfigError('NGINX_UPSTREAM', nginxUpstream, 'expected "auto", "unix" or "tcp"');
  }

  return Object.freeze({
    port,
    nodePorts: Object.freeze(nodePorts),
    role,
    nodeHost,
    upstreams,
    balancers,
    redisUrl,
    redisCluster,
    adapter,
    recovery,
    redisPort,
    redisMaxmemory,
    runDir,
    appModule,
    emitToken,
    adminPassword,
    allowedOrigins: parseOrigins(value(env, 'ALLOWED_ORIGINS')),
    nginxWorkers,
    nginxUpstream,
    tls: parseTls(env, root),
    heartbeatS: parseCount(
      'HEARTBEAT',
      value(env, 'HEARTBEAT') as string,
      HEARTBEAT_S.min,
      HEARTBEAT_S.max,
    ),
    logLevel: parseLogLevel(value(env, 'LOG_LEVEL') as string),
  });
}
