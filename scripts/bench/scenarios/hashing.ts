// nginx's `ip_hash` against `hash $remote_addr consistent`: how evenly each spreads realistic
// client address sets over four nodes. Real nginx, real requests from each source address.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../../services/node/config.ts';
import { freePorts } from '../../kit/ports.ts';
import { httpOk } from '../../kit/probes.ts';
import { renderTemplate } from '../../kit/render-nginx.ts';
import { waitUntil } from '../../kit/wait.ts';

export interface Distribution {
  set: string;
  clients: number;
  networks: number;
  ipHash: number[];
  consistent: number[];
  /** Busiest node's load over the mean (1 = perfectly even). */
  ipHashImbalance: number;
  consistentImbalance: number;
}

const rand = (n: number) => 1 + Math.floor(Math.random() * n);

/** Client address sets: [name, addresses]. Octets 2-4 stand for a real address's 1-3 and 4. */
function addressSets(clients: number): Array<[string, string[], number]> {
  const uniform = Array.from(
    { length: clients },
    () => `127.${rand(250)}.${rand(250)}.${rand(250)}`,
  );
  const fewNets = Array.from(
    { length: clients },
    (_, i) => `127.10.${1 + (i % 8)}.${1 + (Math.floor(i / 8) % 250)}`,
  );
  const skewed = Array.from({ length: clients }, (_, i) =>
    i % 10 < 7
      ? `127.20.${1 + (i % 2)}.${1 + (Math.floor(i / 2) % 250)}`
      : `127.30.${rand(100)}.${rand(250)}`,
  );
  return [
    ['uniform: every client its own /24', uniform, clients],
    ['8 office networks (/24s)', fewNets, 8],
    ['skewed: 70% from 2 /24s, 30% from 100', skewed, 102],
  ];
}

function get(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/', localAddress, agent: false },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve(Number(body)));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function spread(port: number, addresses: string[], backends: number): Promise<number[]> {
  const counts = new Array(backends).fill(0);
  let next = 0;
  const worker = async () => {
    while (next < addresses.length) {
      const address = addresses[next++] as string;
      counts[await get(port, address)] += 1;
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return counts;
}

const imbalance = (counts: number[]) =>
  Math.max(...counts) / (counts.reduce((a, b) => a + b, 0) / counts.length);

export async function hashDistribution(
  clients: number,
  say: (line: string) => void,
): Promise<Distribution[]> {
  const BACKENDS = 4;
  const ports = await freePorts(BACKENDS + 2);
  const backendPorts = ports.slice(0, BACKENDS);
  const [ipHashPort, consistentPort] = ports.slice(BACKENDS) as [number, number];
  const servers: Server[] = backendPorts.map((port, i) =>
    createServer((_, res) => res.end(String(i))).listen(port, '127.0.0.1'),
  );
  const dir = mkdtempSync(join(tmpdir(), 'kit-iphash-'));
  mkdirSync(join(dir, 'tmp'));
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    renderTemplate(
      readFileSync(join(ROOT, 'scripts/bench/templates/hashing-nginx.conf.template'), 'utf8'),
      {
        DIR: dir,
        IP_HASH_PORT: String(ipHashPort),
        CONSISTENT_PORT: String(consistentPort),
        SERVERS: backendPorts.map((p) => `        server 127.0.0.1:${p};`).join('\n'),
      },
    ),
  );
  const nginx = spawn(
    '/usr/sbin/nginx',
    ['-p', `${dir}/`, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
    {
      stdio: 'ignore',
    },
  );
  try {
    await waitUntil('nginx to answer', () => httpOk(`http://127.0.0.1:${ipHashPort}/`), {
      timeoutMs: 30_000,
    });
    const results: Distribution[] = [];
    for (const [set, addresses, networks] of addressSets(clients)) {
      const ipHash = await spread(ipHashPort, addresses, BACKENDS);
      const consistent = await spread(consistentPort, addresses, BACKENDS);
      results.push({
        set,
        clients: addresses.length,
        networks,
        ipHash,
        consistent,
        ipHashImbalance: imbalance(ipHash),
        consistentImbalance: imbalance(consistent),
      });
      say(`hash spread, ${set}: ip_hash ${ipHash.join('/')}, consistent ${consistent.join('/')}`);
    }
    return results;
  } finally {
    nginx.kill('SIGTERM');
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
