// Concurrent connections through nginx, opened in steps (5k, 10k, 20k, 50k in a full run) and
// held: at each step, the ramp (accepted connections/s), memory per connection (each node's heap
// after a full GC, node and nginx RSS) and what the idle connections cost in CPU (Engine.IO's
// heartbeat, over the servers' CPU with no connection). Also one plain Socket.IO process holding
// connections directly: Socket.IO's own heap per connection, the floor under any node's.

import { httpText } from '../../kit/probes.ts';
import { waitUntil } from '../../kit/wait.ts';
import type { Generators } from '../load/generators.ts';
import type { Reply } from '../load/loadgen.ts';
import { cpuSeconds, isNginx, isNodeProcess, rssBytes, type Variant } from '../variants.ts';

export interface ConnectionsStep {
  /** Connections asked for in all, this step's and the earlier ones'. */
  target: number;
  /** Opened so far, this step's and the earlier ones', as the generators count them. */
  opened: number;
  /** Handshakes of this step that failed (none retried). */
  failed: number;
  firstError?: string;
  /** This step's new connections over the seconds they took to open. */
  acceptedPerSec: number;
  /** Sockets the nodes hold, as they count them. */
  held: number;
  heapPerConnectionBytes: number;
  nodeRssPerConnectionBytes: number;
  nginxRssPerConnectionBytes: number;
  /** Server CPU while the connections idle, over the no-connection baseline: % of one core per
   * 10,000 connections. */
  idleCpuPercentPer10k: number;
}

export interface ConnectionsResult {
  /** The kit as it comes (HEARTBEAT=2). */
  steps: ConnectionsStep[];
  /** The same with a longer heartbeat (full runs): what idle connections cost without it. */
  relaxed?: { heartbeatS: number; steps: ConnectionsStep[] };
  /** Socket.IO alone: a plain process holding connections, its heap after GC per connection. */
  socketIoAlone?: { connections: number; heapPerConnectionBytes: number };
}

interface Heap {
  heapUsed: number;
  clients: number;
}

async function heapOf(url: string): Promise<Heap> {
  const text = await httpText(`${url}/bench/heap`, 60_000);
  if (text === undefined) throw new Error(`${url}/bench/heap did not answer`);
  return JSON.parse(text) as Heap;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Server CPU over `ms`, as % of one core. */
async function cpuPercent(pids: number[], ms: number): Promise<number> {
  const before = cpuSeconds(pids);
  await settle(ms);
  return ((cpuSeconds(pids) - before) / (ms / 1000)) * 100;
}

async function open(
  variant: Variant,
  generators: Generators,
  count: number,
): Promise<{ opened: number; failed: number; firstError?: string; seconds: number }> {
  const began = Date.now();
  const replies = await generators.each<Extract<Reply, { type: 'opened' }>>((g) => ({
    type: 'hold',
    url: variant.url,
    kind: variant.kind,
    addresses: generators.addresses(g, 250),
    count: Math.ceil(count / generators.size),
    concurrency: 50,
  }));
  return {
    opened: replies.reduce((a, r) => a + r.opened, 0),
    failed: replies.reduce((a, r) => a + r.failed, 0),
    firstError: replies.find((r) => r.firstError)?.firstError,
    seconds: (Date.now() - began) / 1000,
  };
}

export async function holdConnections(
  variant: Variant,
  generators: Generators,
  targets: readonly number[],
  say: (line: string) => void,
  quick = false,
  /** The kit's HEARTBEAT: idle CPU is read over whole heartbeats, after every new connection
   * has had its first ping. */
  heartbeatS = 2,
): Promise<ConnectionsStep[]> {
  // Quiet before the baseline; a hold before each reading (a heartbeat at least: a connection
  // is first pinged one heartbeat after it opens); idle CPU over whole heartbeats. A quick run
  // is a smoke test: its idle figures are not worth the wait.
  const beat = heartbeatS * 1000;
  const [quietMs, holdMs, idleMs] = quick
    ? [500, 1000, 1000]
    : [2000, Math.max(4000, beat + 1000), beat * Math.max(2, Math.ceil(6000 / beat))];
  const nodes = variant.nodePorts.map((port) => `http://127.0.0.1:${port}`);
  const nginxPids = () => variant.pids().filter(isNginx);
  const nodePids = () => variant.pids().filter(isNodeProcess);
  await settle(quietMs);
  // A quick run's lent kit may still be closing the clients of the scenario before: a few
  // seconds for them to go; any left are not counted as this scenario's. The heap reading that
  // found none is the baseline (each reading is a full GC on every node).
  const clients = (heaps: Heap[]) => heaps.reduce((a, h) => a + h.clients, 0);
  const readHeaps = () => Promise.all(nodes.map(heapOf));
  const heapBefore = await waitUntil(
    'the nodes to have no client',
    async () => {
      const heaps = await readHeaps();
      return clients(heaps) === 0 && heaps;
    },
    { timeoutMs: 5000 },
  ).catch(readHeaps);
  const clientsBefore = clients(heapBefore);
  const nodeRssBefore = rssBytes(nodePids());
  const nginxBefore = rssBytes(nginxPids());
  const idleBaseline = await cpuPercent(variant.pids(), idleMs);
  const steps: ConnectionsStep[] = [];
  let opened = 0;
  for (const target of targets) {
    say(
      `connections: opening ${(target - opened).toLocaleString('en')} more, to ${target.toLocaleString('en')}`,
    );
    const batch = await open(variant, generators, target - opened);
    opened += batch.opened;
    say(
      `connections: ${opened.toLocaleString('en')} open, ${batch.failed} failed, ` +
        `${Math.round(batch.opened / batch.seconds).toLocaleString('en')}/s; holding`,
    );
    await settle(holdMs);
    const idle = await cpuPercent(variant.pids(), idleMs);
    const heaps = await readHeaps();
    // Clients a quick run's lent kit still had from the scenario before are not this step's.
    const held = clients(heaps) - clientsBefore;
    const per = (bytes: number) => Math.round(bytes / Math.max(1, held));
    const heapGrowth = heaps.reduce(
      (a, h, i) => a + h.heapUsed - (heapBefore[i]?.heapUsed ?? 0),
      0,
    );
    const step: ConnectionsStep = {
      target,
      opened,
      failed: batch.failed,
      firstError: batch.firstError,
      acceptedPerSec: Math.round(batch.opened / batch.seconds),
      held,
      heapPerConnectionBytes: per(heapGrowth),
      nodeRssPerConnectionBytes: per(rssBytes(nodePids()) - nodeRssBefore),
      // Over what the nodes hold, as the other figures: connections that dropped cost nothing.
      nginxRssPerConnectionBytes: per(rssBytes(nginxPids()) - nginxBefore),
      idleCpuPercentPer10k: ((idle - idleBaseline) / Math.max(1, held)) * 10_000,
    };
    steps.push(step);
    say(
      `connections: ${held.toLocaleString('en')} held by the nodes; per connection heap ${(step.heapPerConnectionBytes / 1024).toFixed(1)} kB, ` +
        `nginx RSS ${(step.nginxRssPerConnectionBytes / 1024).toFixed(1)} kB; idle CPU ${step.idleCpuPercentPer10k.toFixed(1)} % of a core per 10k`,
    );
  }
  return steps;
}

/** Socket.IO's own heap per connection: a plain process (servers/plain.ts) holding `count`. */
export async function socketIoAlone(
  plain: Variant,
  generators: Generators,
  count: number,
  say: (line: string) => void,
): Promise<NonNullable<ConnectionsResult['socketIoAlone']>> {
  const before = await heapOf(plain.url);
  const batch = await open(plain, generators, count);
  await settle(count > 1000 ? 2000 : 500);
  const after = await heapOf(plain.url);
  const held = after.clients - before.clients;
  if (batch.failed > 0 || held <= 0)
    throw new Error(`a plain process held ${held} of ${count} (${batch.firstError ?? 'no error'})`);
  const heapPerConnectionBytes = Math.round((after.heapUsed - before.heapUsed) / held);
  say(
    `one plain Socket.IO process: ${held.toLocaleString('en')} held, heap ${(heapPerConnectionBytes / 1024).toFixed(1)} kB per connection`,
  );
  return { connections: held, heapPerConnectionBytes };
}
