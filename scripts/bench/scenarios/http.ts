// Plain HTTP through nginx against one node directly (the seeds' `ab` comparison, done with wrk,
// keepalive on, several rounds, median and ratio from the same run), and what a request costs
// each program in CPU: on two cores shared by wrk, nginx and the node, those costs bound the
// ratio, whatever the configuration.
import { $ } from 'zx';
import { median } from '../stats.ts';
import { cpuSeconds, isNginx, isNodeProcess } from '../variants.ts';

/** CPU µs per request: the node, nginx (none direct) and wrk itself. */
export interface RequestCost {
  node: number;
  nginx: number;
  wrk: number;
}

export interface HttpResult {
  path: string;
  connections: number;
  seconds: number;
  direct: number[];
  nginx: number[];
  directMedian: number;
  nginxMedian: number;
  ratio: number;
  directCost?: RequestCost;
  nginxCost?: RequestCost;
  /** The most nginx could spend per request for the ratio to reach 0.8 on these cores, with the
   * node's and wrk's costs as measured through nginx. */
  nginxBudgetFor08?: number;
}

interface Round {
  rps: number;
  cost: RequestCost;
}

/** One wrk run, and the CPU each side spent on it (wrk's from the shell's `times`). */
async function wrk(
  url: string,
  connections: number,
  seconds: number,
  servers: number[],
): Promise<Round> {
  const node = servers.filter(isNodeProcess);
  const nginx = servers.filter(isNginx);
  const before = { node: cpuSeconds(node), nginx: cpuSeconds(nginx) };
  const out = await $({
    timeout: `${seconds + 30}s`,
    // `times` prints 0m1.234s, not a locale's 0m1,234s.
    env: { ...process.env, LC_ALL: 'C' },
  })`bash -c ${`wrk -t2 -c${connections} -d${seconds}s --latency ${url} && times`}`;
  const rps = /Requests\/sec:\s+([0-9.]+)/.exec(out.stdout)?.[1];
  const requests = Number(/(\d+) requests in/.exec(out.stdout)?.[1] ?? Number.NaN);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out.stdout)?.[1];
  if (non2xx) throw new Error(`wrk saw ${non2xx} error answers from ${url}`);
  // `times`: the shell's own user and system time, then its children's (wrk's).
  const children = out.stdout.trim().split('\n').at(-1) ?? '';
  const times = [...children.matchAll(/(\d+)m([0-9.]+)s/g)];
  if (times.length !== 2) throw new Error(`no CPU times after wrk: ${children}`);
  const wrkSeconds = times.reduce((a, m) => a + Number(m[1]) * 60 + Number(m[2]), 0);
  const micros = (s: number) => (s / requests) * 1e6;
  return {
    rps: Number(rps),
    cost: {
      node: micros(cpuSeconds(node) - before.node),
      nginx: micros(cpuSeconds(nginx) - before.nginx),
      wrk: micros(wrkSeconds),
    },
  };
}

const medianCost = (rounds: Round[]): RequestCost => ({
  node: median(rounds.map((r) => r.cost.node)),
  nginx: median(rounds.map((r) => r.cost.nginx)),
  wrk: median(rounds.map((r) => r.cost.wrk)),
});

export async function httpThroughNginx(
  nginxUrl: string,
  nodeUrl: string,
  rounds: number,
  seconds: number,
  say: (line: string) => void,
  /** The kit's processes, for what a request costs each. */
  servers: () => number[] = () => [],
  cores = 2,
): Promise<HttpResult> {
  const connections = 50;
  const direct: Round[] = [];
  const nginx: Round[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate, so drift on a shared machine hits both alike.
    direct.push(await wrk(`${nodeUrl}/healthz`, connections, seconds, servers()));
    nginx.push(await wrk(`${nginxUrl}/healthz`, connections, seconds, servers()));
    say(
      `http round ${i + 1}: node direct ${direct.at(-1)?.rps.toFixed(0)} req/s, through nginx ${nginx.at(-1)?.rps.toFixed(0)} req/s`,
    );
  }
  const directMedian = median(direct.map((r) => r.rps));
  const nginxMedian = median(nginx.map((r) => r.rps));
  const nginxCost = medianCost(nginx);
  return {
    path: '/healthz',
    connections,
    seconds,
    direct: direct.map((r) => r.rps),
    nginx: nginx.map((r) => r.rps),
    directMedian,
    nginxMedian,
    ratio: nginxMedian / directMedian,
    directCost: medianCost(direct),
    nginxCost,
    nginxBudgetFor08: (cores / (0.8 * directMedian)) * 1e6 - nginxCost.node - nginxCost.wrk,
  };
}
