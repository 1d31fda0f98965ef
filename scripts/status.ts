// ./scripts/status.sh: one line per part (Redis, each node, nginx): up or down, pid, port,
// connections. Exit 0 only if all are up.
import type { KitConfig } from './kit/config.ts';
import { kitParts, localUrl, nodeUrl, type Part, type PartKind } from './kit/parts.ts';
import { livePid } from './kit/pid-files.ts';
import { httpJson, httpText, redisClusterInfo, redisInfo } from './kit/probes.ts';
import { existingRedisUrl } from './kit/redis-server.ts';
import { configOrFail, table } from './kit/report.ts';
import { type RunDir, runDir } from './kit/run-dir.ts';

type Row = [
  part: string,
  state: string,
  pid: string,
  port: string,
  connections: string,
  detail: string,
];

/** "12345 requests, 3 reading, 1 writing, 40 waiting" from stub_status. */
function nginxDetail(stub: string): string {
  const requests = stub.split('\n')[2]?.trim().split(/\s+/)[2];
  const rw = /Reading: (\d+) Writing: (\d+) Waiting: (\d+)/.exec(stub);
  return `${requests ?? '?'} requests, ${rw?.[1]} reading, ${rw?.[2]} writing, ${rw?.[3]} waiting`;
}

const pidOf = (dir: RunDir, name: string) => String(livePid(dir, name) ?? '-');

async function redisRow(config: KitConfig, dir: RunDir, part?: Part): Promise<Row> {
  // Looking makes nothing: a kit never started here has no Redis password yet, so Redis is down.
  const url = config.redisUrl ?? existingRedisUrl(config, dir);
  const info = url === undefined ? undefined : await redisInfo(url);
  const detail = info
    ? `${info.used_memory_human ?? '?'} used, aof ${info.aof_enabled === '1' ? 'on' : 'off'}`
    : '';
  return [
    'redis',
    info ? 'up' : 'down',
    part ? pidOf(dir, part.name) : '-',
    part ? String(part.port) : 'REDIS_URL',
    info?.connected_clients ?? '-',
    detail,
  ];
}

async function nodeRow(dir: RunDir, part: Part): Promise<Row> {
  const [health, ready] = await Promise.all([
    httpJson(`${nodeUrl(config, part.port)}/healthz`),
    httpJson(`${nodeUrl(config, part.port)}/readyz`),
  ]);
  const up = health !== undefined;
  return [
    part.name,
    up ? (ready ? 'up' : 'up, not ready') : 'down',
    String(health?.pid ?? pidOf(dir, part.name)),
    String(part.port),
    up ? String(health.connections) : '-',
    '',
  ];
}

async function nginxRow(dir: RunDir, part: Part): Promise<Row> {
  const stub = await httpText(`${localUrl(config)}/nginx_status`);
  const active = stub ? /Active connections:\s*(\d+)/.exec(stub)?.[1] : undefined;
  return [
    part.name,
    stub ? 'up' : 'down',
    pidOf(dir, part.name),
    String(part.port),
    active ?? '-',
    stub ? nginxDetail(stub) : '',
  ];
}

const config = configOrFail('status.sh');
/** A Redis Cluster (REDIS_CLUSTER): its state as the first seed that answers sees it. */
async function clusterRow(seeds: readonly string[]): Promise<Row> {
  for (const seed of seeds) {
    const info = await redisClusterInfo(seed);
    if (info === undefined) continue;
    const ok = info.cluster_state === 'ok';
    return [
      'redis-cluster',
      ok ? 'up' : `up, state ${info.cluster_state}`,
      '-',
      new URL(seed).port,
      '-',
      `${info.cluster_size} masters, ${info.cluster_known_nodes} nodes known`,
    ];
  }
  return ['redis-cluster', 'down', '-', '-', '-', 'no seed answers'];
}

const dir = runDir(config.runDir);
const parts = kitParts(config, dir);
/** An outside Redis is no part of the kit, but the nodes need it: it has a line too. */
function outsideRedis(): Promise<Row>[] {
  if (config.role === 'balancer' || parts.some((p) => p.kind === 'redis')) return [];
  if (config.redisCluster !== undefined) return [clusterRow(config.redisCluster)];
  return [redisRow(config, dir)];
}
const rowOf: Record<PartKind, (part: Part) => Promise<Row>> = {
  redis: (part) => redisRow(config, dir, part),
  node: (part) => nodeRow(dir, part),
  nginx: (part) => nginxRow(dir, part),
};
const rows: Row[] = await Promise.all([
  ...outsideRedis(),
  ...parts.map((part) => rowOf[part.kind](part)),
]);

process.stdout.write(`${table([['part', 'state', 'pid', 'port', 'connections', ''], ...rows])}\n`);
const down = rows.filter((r) => r[1] !== 'up').map((r) => r[0]);
if (down.length > 0) {
  process.stderr.write(`status.sh: not all parts are up: ${down.join(', ')}\n`);
  process.exit(1);
}
