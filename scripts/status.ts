// ./scripts/status.sh: one line per part (Redis, each node, nginx): up or down, pid, port,
// connections. Exit 0 only if all are up.
import { redisInfo } from './kit/probes.ts';
import { existingRedisUrl } from './kit/redis-server.ts';
import { configOrFail, table } from './kit/report.ts';
import { livePid, runDir } from './kit/run-dir.ts';
import { partPlaces } from './kit/supervisor.ts';

const config = configOrFail('status.sh');
const dir = runDir(config.runDir);
const places = partPlaces(config, dir);
const ownRedis = places.some((p) => p.kind === 'redis');
// Looking makes nothing: a kit never started here has no Redis password yet, so Redis is down.
const redisUrl = config.redisUrl ?? existingRedisUrl(config, dir);

async function json(url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return response.ok ? ((await response.json()) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function text(url: string): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return response.ok ? await response.text() : undefined;
  } catch {
    return undefined;
  }
}

/** "12345 requests, 3 reading, 1 writing, 40 waiting" from stub_status. */
function nginxDetail(stub: string): string {
  const requests = stub.split('\n')[2]?.trim().split(/\s+/)[2];
  const rw = /Reading: (\d+) Writing: (\d+) Waiting: (\d+)/.exec(stub);
  return `${requests ?? '?'} requests, ${rw?.[1]} reading, ${rw?.[2]} writing, ${rw?.[3]} waiting`;
}

type Row = [
  part: string,
  state: string,
  pid: string,
  port: string,
  connections: string,
  detail: string,
];
const rows: Row[] = [];

{
  const info = redisUrl === undefined ? undefined : await redisInfo(redisUrl);
  const pid = ownRedis ? livePid(dir, 'redis') : undefined;
  const where = ownRedis ? String(config.redisPort) : 'REDIS_URL';
  rows.push([
    'redis',
    info ? 'up' : 'down',
    pid ? String(pid) : '-',
    where,
    info?.connected_clients ?? '-',
    info
      ? `${info.used_memory_human ?? '?'} used, aof ${info.aof_enabled === '1' ? 'on' : 'off'}`
      : '',
  ]);
}

await Promise.all(
  places
    .filter((p) => p.kind === 'node')
    .map(async (node, i) => {
      const port = config.nodePorts[i] as number;
      const [health, ready] = await Promise.all([
        json(`http://127.0.0.1:${port}/healthz`),
        json(`http://127.0.0.1:${port}/readyz`),
      ]);
      const up = health !== undefined;
      rows[i + 1] = [
        node.name,
        up ? (ready ? 'up' : 'up, not ready') : 'down',
        String(health?.pid ?? livePid(dir, node.name) ?? '-'),
        String(port),
        up ? String(health.connections) : '-',
        '',
      ];
    }),
);

{
  const stub = await text(`http://127.0.0.1:${config.port}/nginx_status`);
  const active = stub ? /Active connections:\s*(\d+)/.exec(stub)?.[1] : undefined;
  const pid = livePid(dir, 'nginx');
  rows.push([
    'nginx',
    stub ? 'up' : 'down',
    pid ? String(pid) : '-',
    String(config.port),
    active ?? '-',
    stub ? nginxDetail(stub) : '',
  ]);
}

process.stdout.write(`${table([['part', 'state', 'pid', 'port', 'connections', ''], ...rows])}\n`);
const allUp = rows.every((r) => r[1] === 'up');
if (!allUp) {
  process.stderr.write(
    `status.sh: not all parts are up: ${rows
      .filter((r) => r[1] !== 'up')
      .map((r) => r[0])
      .join(', ')}\n`,
  );
  process.exit(1);
}
