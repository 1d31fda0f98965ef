// The kit's processes, described once. Everything that starts, waits for, lists or stops one of
// them (the supervisor, up.sh, down.sh, status.sh, restart.sh, the bench) reads this table: its
// name, kind and address, its log, how it is started, how readiness and liveness are probed,
// which signal stops it, how long it may take, and where it sits in the stop order.
import { isIP } from 'node:net';
import { join } from 'node:path';
import { handOver, ROOT } from '../../services/node/config.ts';
import { type KitConfig, ownRedis } from './config.ts';
import type { Liveness } from './liveness.ts';
import { httpFailure, httpOk, redisAnswers } from './probes.ts';
import { existingRedisUrl, REDIS_BIN } from './redis-server.ts';
import { NGINX_BIN, nginxArgs } from './render-nginx.ts';
import type { RunDir } from './run-dir.ts';
import { nodeSocket } from './upstream.ts';

export type PartKind = 'redis' | 'node' | 'nginx';

/** What only the start makes (secrets), and a part's start command may need. */
export interface StartSecrets {
  /** The one Redis of the nodes; unset with REDIS_CLUSTER, and on a balancer. */
  readonly redisUrl: string | undefined;
  readonly emitToken: string;
  readonly adminPasswordHash: string | undefined;
}

export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
  /** The whole environment of the process (unset: the supervisor's). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface Part {
  readonly name: string;
  readonly kind: PartKind;
  /** Where it listens, as an operator reads it. */
  readonly address: string;
  readonly port: number;
  readonly log: string;
  launch(secrets: StartSecrets): Launch;
  /** Ready to serve; probed after a start until it says yes. */
  ready(): Promise<boolean>;
  readonly readyTimeoutMs: number;
  /** Probed once the part has been ready; one silent too long is killed and started again. */
  readonly liveness?: Liveness;
  readonly stopSignal: NodeJS.Signals;
  /** How long a stop may take before SIGKILL. */
  readonly graceMs: number;
  /** Lowest first when stopping; started the other way round. */
  readonly stopOrder: number;
  /** Runs as the service user when the kit runs as root (service-user.ts). */
  readonly unprivileged: boolean;
}

/** The supervisor is no part of the kit, but it is stopped like one (down.sh). */
export const SUPERVISOR = { name: 'supervisor', stopSignal: 'SIGTERM', graceMs: 40_000 } as const;

export const nodeName = (port: number) => `node-${port}`;

/** How a node stops: SIGTERM drains it (services/node/shutdown.ts gives up after 8 s). */
export const NODE_STOP = { stopSignal: 'SIGTERM', graceMs: 12_000, stopOrder: 1 } as const;

/** Whether an address (NODE_HOST) is this host's loopback. */
export const isLoopback = (address: string) => address === '::1' || address.startsWith('127.');

/** A node's own address as a URL: where probes and status.sh reach it. */
export const nodeUrl = (config: Pick<KitConfig, 'nodeHost'>, port: number) =>
  `http://${isIP(config.nodeHost) === 6 ? `[${config.nodeHost}]` : config.nodeHost}:${port}`;

/** nginx's public port as this host reaches it: HTTPS when TLS is on. */
export const localUrl = (config: KitConfig) =>
  `${config.tls ? 'https' : 'http'}://127.0.0.1:${config.port}`;

/** The process basics a node keeps from the supervisor's environment. */
const NODE_BASICS = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'NODE_EXTRA_CA_CERTS'];

/**
 * A node's environment: its handover (services/node/config.ts), the process basics, and the
 * application's own settings, which an operator names APP_* (APP_MODULE aside). Nothing else of
 * the operator's environment reaches it.
 */
function nodeEnvironment(handover: Record<string, string>): NodeJS.ProcessEnv {
  const kept = Object.entries(process.env).filter(
    ([name]) => NODE_BASICS.includes(name) || (name.startsWith('APP_') && name !== 'APP_MODULE'),
  );
  return { ...Object.fromEntries(kept), ...handover };
}

/** The parts this configuration runs, in start order. Reads and makes nothing. */
export function kitParts(config: KitConfig, dir: RunDir): Part[] {
  const log = (name: string) => join(dir.logs, `${name}.log`);
  const redis: Part[] = !ownRedis(config.role, config.redisUrl, config.redisCluster)
    ? []
    : [
        {
          name: 'redis',
          kind: 'redis',
          address: `127.0.0.1:${config.redisPort}`,
          port: config.redisPort,
          log: log('redis'),
          launch: () => ({ command: REDIS_BIN, args: [join(dir.redis, 'redis.conf')] }),
          ready: async () => {
            const url = existingRedisUrl(config, dir);
            return url !== undefined && (await redisAnswers(url, 1000));
          },
          readyTimeoutMs: 15_000,
          // SIGTERM: redis-server writes its data and exits.
          stopSignal: 'SIGTERM',
          graceMs: 15_000,
          stopOrder: 2,
          unprivileged: true,
        },
      ];
  const nodes = (config.role === 'balancer' ? [] : config.nodePorts).map(
    (port): Part => ({
      name: nodeName(port),
      kind: 'node',
      address: new URL(nodeUrl(config, port)).host,
      port,
      log: log(nodeName(port)),
      launch: (secrets) => ({
        command: process.execPath,
        args: ['--import', 'tsx', join(ROOT, 'services/node/main.ts')],
        env: nodeEnvironment(
          handOver({
            // Across hosts the port alone does not tell the nodes apart (/healthz, `session`).
            nodeId: isLoopback(config.nodeHost)
              ? nodeName(port)
              : `${nodeName(port)}@${config.nodeHost}`,
            host: config.nodeHost,
            port,
            socketPath: nodeSocket(dir, port),
            balancers: config.balancers,
            redisUrl: config.redisCluster ? undefined : secrets.redisUrl,
            redisCluster: config.redisCluster,
            adapter: config.adapter,
            recovery: config.recovery,
            appModule: config.appModule,
            emitToken: secrets.emitToken,
            adminPasswordHash: secrets.adminPasswordHash,
            allowedOrigins: config.allowedOrigins,
            heartbeatS: config.heartbeatS,
            logLevel: config.logLevel,
          }),
        ),
      }),
      ready: () => httpOk(`${nodeUrl(config, port)}/readyz`),
      readyTimeoutMs: 45_000,
      liveness: {
        what: '/healthz',
        check: (timeoutMs) => httpFailure(`${nodeUrl(config, port)}/healthz`, timeoutMs),
      },
      ...NODE_STOP,
      unprivileged: true,
    }),
  );
  const nginx: Part = {
    name: 'nginx',
    kind: 'nginx',
    address: `0.0.0.0:${config.port}`,
    port: config.port,
    log: log('nginx-error'),
    launch: () => ({ command: NGINX_BIN, args: [...nginxArgs(dir), '-g', 'daemon off;'] }),
    ready: () => httpOk(`${localUrl(config)}/healthz`),
    readyTimeoutMs: 15_000,
    // SIGQUIT: graceful; open WebSockets get a few seconds before SIGKILL ends the group.
    stopSignal: 'SIGQUIT',
    graceMs: 3_000,
    stopOrder: 0,
    unprivileged: false,
  };
  return [...redis, ...nodes, ...(config.role === 'nodes' ? [] : [nginx])];
}

/** The parts grouped by stop order, first to stop first. */
export function stopGroups<P extends Pick<Part, 'stopOrder'>>(parts: readonly P[]): P[][] {
  const orders = [...new Set(parts.map((p) => p.stopOrder))].sort((a, b) => a - b);
  return orders.map((order) => parts.filter((p) => p.stopOrder === order));
}
