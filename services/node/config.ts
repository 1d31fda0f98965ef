// The node's configuration, as the supervisor hands it over: one table of variables (HANDOVER)
// that the supervisor writes with handOver() and the node reads with loadNodeConfig(), so the two
// cannot drift apart. The operator's variables are read by the scripts (scripts/kit/config.ts);
// a node sees only these, the process basics and the application's own APP_* variables.
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KitError } from './errors.ts';
import { HEARTBEAT_S } from './socket-options.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export class ConfigError extends KitError {
  constructor(
    readonly variable: string,
    readonly value: string | undefined,
    reason: string,
  ) {
    super('KIT_ERR_CONFIG', `${variable}=${JSON.stringify(value ?? '')}: ${reason}`);
  }
}

type Env = Record<string, string | undefined>;

/** The Socket.IO adapters the kit offers (ADAPTER). */
export type AdapterName = 'redis' | 'redis-sharded' | 'redis-streams';

/** Connection state recovery (ADAPTER=redis-streams): RECOVERY_WINDOW, STREAM_MAXLEN, STREAM_COUNT. */
export interface Recovery {
  readonly windowS: number;
  readonly streamMaxLen: number;
  readonly streamCount: number;
}

/** What one node process needs. */
export interface NodeConfig {
  readonly nodeId: string;
  /** The address it binds. */
  readonly host: string;
  readonly port: number;
  /** The Unix socket nginx connects to, besides the port (unset: the port only). */
  readonly socketPath: string | undefined;
  /** Peers besides this host that may connect, and whose X-Real-IP counts; unset: anyone. */
  readonly balancers: readonly string[] | undefined;
  /** One Redis, or (exclusive) the seed URLs of a Redis Cluster. */
  readonly redisUrl: string | undefined;
  readonly redisCluster: readonly string[] | undefined;
  readonly adapter: AdapterName;
  /** Set with the streams adapter only. */
  readonly recovery: Recovery | undefined;
  readonly appModule: string;
  readonly emitToken: string;
  /** Salted SHA-256 of the Admin UI password (admin-auth.ts); unset: the Admin UI is off. */
  readonly adminPasswordHash: string | undefined;
  readonly allowedOrigins: readonly string[] | undefined;
  /** Seconds between Engine.IO pings (HEARTBEAT); the pong is awaited twice as long. */
  readonly heartbeatS: number;
  readonly logLevel: string;
}

/** The supervisor → node handover: every NodeConfig field and the variable that carries it. */
export const HANDOVER = {
  nodeId: 'KIT_NODE_ID',
  host: 'KIT_NODE_HOST',
  port: 'KIT_NODE_PORT',
  socketPath: 'KIT_NODE_SOCKET',
  balancers: 'KIT_BALANCERS',
  redisUrl: 'KIT_REDIS_URL',
  redisCluster: 'KIT_REDIS_CLUSTER',
  adapter: 'KIT_ADAPTER',
  recovery: 'KIT_RECOVERY',
  appModule: 'KIT_APP_MODULE',
  emitToken: 'KIT_EMIT_TOKEN',
  adminPasswordHash: 'KIT_ADMIN_PASSWORD_HASH',
  allowedOrigins: 'KIT_ALLOWED_ORIGINS',
  heartbeatS: 'KIT_HEARTBEAT',
  logLevel: 'KIT_LOG_LEVEL',
} as const satisfies Record<keyof NodeConfig, `KIT_${string}`>;

/** A node's configuration as the variables of its environment (the supervisor's side). */
export function handOver(config: NodeConfig): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [field, variable] of Object.entries(HANDOVER)) {
    const value = config[field as keyof NodeConfig];
    if (value === undefined) continue;
    env[variable] = Array.isArray(value)
      ? value.join(',')
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
  }
  return env;
}

/** The node's side: reads and checks what handOver() wrote. */
export function loadNodeConfig(env: Env = process.env): NodeConfig {
  const required = (field: keyof NodeConfig): string => {
    const variable = HANDOVER[field];
    const raw = env[variable];
    if (raw === undefined || raw === '') {
      throw new ConfigError(
        variable,
        raw,
        'missing (a node is started by scripts/up.sh, which sets it)',
      );
    }
    return raw;
  };
  const optional = (field: keyof NodeConfig) => env[HANDOVER[field]] || undefined;
  const nodeId = required('nodeId');
  const appModule = required('appModule');
  const host = required('host');
  if (isIP(host) === 0) throw new ConfigError(HANDOVER.host, host, 'not an IP address');
  const rawBalancers = optional('balancers');
  const rawUrl = optional('redisUrl');
  const rawCluster = optional('redisCluster');
  if ((rawUrl === undefined) === (rawCluster === undefined)) {
    throw new ConfigError(
      HANDOVER.redisUrl,
      rawUrl,
      `exactly one of ${HANDOVER.redisUrl} and ${HANDOVER.redisCluster} must be set`,
    );
  }
  const adapter = required('adapter');
  if (adapter !== 'redis' && adapter !== 'redis-sharded' && adapter !== 'redis-streams') {
    throw new ConfigError(
      HANDOVER.adapter,
      adapter,
      'expected "redis", "redis-sharded" or "redis-streams"',
    );
  }
  const recovery = parseRecoveryHandover(optional('recovery'), adapter);
  return Object.freeze({
    nodeId,
    host,
    port: parsePort(HANDOVER.port, required('port')),
    socketPath: optional('socketPath'),
    balancers:
      rawBalancers === undefined ? undefined : parseAddresses(HANDOVER.balancers, rawBalancers),
    redisUrl: rawUrl === undefined ? undefined : parseHandedRedisUrl(rawUrl),
    redisCluster:
      rawCluster === undefined ? undefined : parseRedisCluster(HANDOVER.redisCluster, rawCluster),
    adapter,
    recovery,
    appModule: isAbsolute(appModule) ? appModule : resolve(ROOT, appModule),
    emitToken: required('emitToken'),
    adminPasswordHash: optional('adminPasswordHash'),
    allowedOrigins: parseOrigins(optional('allowedOrigins'), HANDOVER.allowedOrigins),
    // Optional: a node of a newer kit, restarted (restart.sh) by a supervisor started before
    // HEARTBEAT existed, is handed none; it keeps the heartbeat that supervisor's nodes have.
    heartbeatS: parseCount(
      HANDOVER.heartbeatS,
      optional('heartbeatS') ?? String(HEARTBEAT_S.default),
      HEARTBEAT_S.min,
      HEARTBEAT_S.max,
    ),
    logLevel: parseLogLevel(required('logLevel'), HANDOVER.logLevel),
  });
}

/** A whole number from `min` to `max`. */
export function parseCount(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, raw, 'is not a whole number');
  const count = Number(raw);
  if (count < min || count > max) {
    throw new ConfigError(name, raw, `must be from ${min} to ${max}`);
  }
  return count;
}

/** The streams adapter's recovery settings, handed over as JSON; present exactly with it. */
function parseRecoveryHandover(
  raw: string | undefined,
  adapter: AdapterName,
): Recovery | undefined {
  if (adapter !== 'redis-streams') return undefined;
  let parsed: Partial<Recovery> = {};
  try {
    parsed = JSON.parse(raw ?? '') as Partial<Recovery>;
  } catch {
    throw new ConfigError(
      HANDOVER.recovery,
      raw,
      'missing or not JSON (the streams adapter needs it)',
    );
  }
  return recoveryFrom((field) => ({
    name: `${HANDOVER.recovery}.${field}`,
    raw: String(parsed[field]),
  }));
}

/** Each recovery setting: the operator's variable and the values it takes. */
export const RECOVERY_FIELDS = {
  windowS: { variable: 'RECOVERY_WINDOW', min: 1, max: 3600 },
  streamMaxLen: { variable: 'STREAM_MAXLEN', min: 100, max: 10_000_000 },
  streamCount: { variable: 'STREAM_COUNT', min: 1, max: 64 },
} as const;

/** The recovery settings, each read by `read` and checked against RECOVERY_FIELDS. */
export function recoveryFrom(
  read: (field: keyof Recovery, variable: string) => { name: string; raw: string },
): Recovery {
  const settings = {} as Record<keyof Recovery, number>;
  for (const [field, { variable, min, max }] of Object.entries(RECOVERY_FIELDS)) {
    const { name, raw } = read(field as keyof Recovery, variable);
    settings[field as keyof Recovery] = parseCount(name, raw, min, max);
  }
  return Object.freeze(settings);
}

export function parsePort(name: string, raw: string, shown = raw): number {
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, shown, `"${raw}" is not a port number`);
  const port = Number(raw);
  if (port < 1 || port > 65535) {
    throw new ConfigError(name, shown, `port ${port} is out of range (1-65535)`);
  }
  return port;
}

export function parseRedisUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, raw, 'not a URL (expected redis://[:password@]host:port)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(name, raw, 'the scheme must be redis:// or rediss://');
  }
  return raw;
}

/** The handed-over Redis: REDIS_URL's forms, or the kit's own Redis's Unix socket. */
function parseHandedRedisUrl(raw: string): string {
  if (/^unix:\/\/[^/]*\/./.test(raw)) return raw;
  return parseRedisUrl(HANDOVER.redisUrl, raw);
}

/** Comma-separated seed URLs of a Redis Cluster. */
export function parseRedisCluster(name: string, raw: string): readonly string[] {
  const seeds = raw.split(',').map((s) => s.trim());
  if (seeds.some((s) => s === '')) throw new ConfigError(name, raw, 'empty entry in the list');
  // The cluster client reaches the nodes it discovers with the options it was given, not with a
  // seed's scheme: a rediss:// seed would carry TLS to the seeds only.
  if (seeds.some((s) => /^rediss:/i.test(s))) {
    throw new ConfigError(name, raw, 'rediss:// (TLS to a Redis Cluster) is not supported yet');
  }
  return Object.freeze(seeds.map((seed) => parseRedisUrl(name, seed)));
}

/** Comma-separated IP addresses, in the form Node reports a peer (IPv4 also as ::ffff:a.b.c.d). */
export function parseAddresses(name: string, raw: string): readonly string[] {
  const addresses = raw.split(',').map((a) => a.trim());
  for (const address of addresses) {
    if (isIP(address) === 0) {
      throw new ConfigError(name, raw, `"${address}" is not an IP address`);
    }
  }
  return Object.freeze(addresses);
}

export function parseOrigins(
  raw: string | undefined,
  variable = 'ALLOWED_ORIGINS',
): readonly string[] | undefined {
  if (raw === undefined) return undefined;
  const origins = raw.split(',').map((o) => o.trim().replace(/\/$/, ''));
  for (const origin of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(
        variable,
        raw,
        `"${origin}" is not an origin like https://chat.example.com`,
      );
    }
  }
  return Object.freeze(origins);
}

/** A secret copied from an example, or one a person typed as a pattern (`aaaaaaaaaaaaaaaa`). */
export function isPlaceholder(secret: string): boolean {
  return /change-?me|example|placeholder|secret|password/i.test(secret) || new Set(secret).size < 8;
}

export function parseLogLevel(raw: string, variable = 'LOG_LEVEL'): string {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(raw))
    throw new ConfigError(variable, raw, `expected one of ${levels.join(', ')}`);
  return raw;
}
