// Plain HTTP through nginx against one node directly (the seeds' `ab` comparison, done with wrk,
// keepalive on, several rounds, median and ratio from the same run).
import { $ } from 'zx';
import { median } from '../stats.ts';

export interface HttpResult {
  path: string;
  connections: number;
  seconds: number;
  direct: number[];
  nginx: number[];
  directMedian: number;
  nginxMedian: number;
  ratio: number;
}

async function wrk(url: string, connections: number, seconds: number): Promise<number> {
  const out = await $({
    timeout: `${seconds + 30}s`,
  })`wrk -t2 -c${connections} -d${seconds}s --latency ${url}`;
  const rps = /Requests\/sec:\s+([0-9.]+)/.exec(out.stdout)?.[1];
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out.stdout)?.[1];
  if (non2xx) throw new Error(`wrk saw ${non2xx} error answers from ${url}`);
  return Number(rps);
}

export async function httpThroughNginx(
  nginxUrl: string,
  nodeUrl: string,
  rounds: number,
  seconds: number,
  say: (line: string) => void,
): Promise<HttpResult> {
  const connections = 50;
  const direct: number[] = [];
  const nginx: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate, so drift on a shared machine hits both alike.
    direct.push(await wrk(`${nodeUrl}/healthz`, connections, seconds));
    nginx.push(await wrk(`${nginxUrl}/healthz`, connections, seconds));
    say(
      `http round ${i + 1}: node direct ${direct.at(-1)?.toFixed(0)} req/s, through nginx ${nginx.at(-1)?.toFixed(0)} req/s`,
    );
  }
  const directMedian = median(direct);
  const nginxMedian = median(nginx);
  return {
    path: '/healthz',
    connections,
    seconds,
    direct,
    nginx,
    directMedian,
    nginxMedian,
    ratio: nginxMedian / directMedian,
  };
}
