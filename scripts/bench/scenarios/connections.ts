// Concurrent connections through nginx: open them as fast as the generators can (the ramp),
// hold them, and measure memory per connection in each node (heap, RSS) and in nginx.

import { nodeName } from '../../kit/parts.ts';
import { httpText } from '../../kit/probes.ts';
import type { Generators } from '../load/generators.ts';
import type { Reply } from '../load/loadgen.ts';
import { isNginx, rssBytes, type Variant } from '../variants.ts';

export interface ConnectionsResult {
  target: number;
  opened: number;
  failed: number;
  firstError?: string;
  acceptedPerSec: number;
  heapPerConnectionBytes: number;
  nodeRssPerConnectionBytes: number;
  nginxRssPerConnectionBytes: number;
  perNode: Array<{ node: string; connections: number; heapDeltaBytes: number }>;
}

async function nodeGauges(port: number): Promise<{ heap: number; rss: number; clients: number }> {
  const text = (await httpText(`http://127.0.0.1:${port}/metrics`)) ?? '';
  const read = (name: string) =>
    Number(new RegExp(`^${name}\\{[^}]*\\} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    heap: read('nodejs_heap_size_used_bytes'),
    rss: read('process_resident_memory_bytes'),
    clients: read('socketio_connected_clients'),
  };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function holdConnections(
  variant: Variant,
  generators: Generators,
  target: number,
  say: (line: string) => void,
  quick = false,
): Promise<ConnectionsResult> {
  // Quiet before the first reading, and a hold before the second (shorter in a quick run).
  const [quietMs, holdMs] = quick ? [1000, 2000] : [2000, 5000];
  await settle(quietMs);
  const before = await Promise.all(variant.nodePorts.map(nodeGauges));
  const nginxPids = () => variant.pids().filter(isNginx);
  const nginxBefore = rssBytes(nginxPids());
  say(
    `opening ${target.toLocaleString('en')} connections through nginx from ${generators.size} generators`,
  );
  const began = Date.now();
  const replies = await generators.each<Extract<Reply, { type: 'opened' }>>((g) => ({
    type: 'hold',
    url: variant.url,
    kind: variant.kind,
    addresses: generators.addresses(g, 250),
    count: Math.ceil(target / generators.size),
    concurrency: 100,
  }));
  const seconds = (Date.now() - began) / 1000;
  const opened = replies.reduce((a, r) => a + r.opened, 0);
  const failed = replies.reduce((a, r) => a + r.failed, 0);
  say(`${opened.toLocaleString('en')} open, ${failed} failed, in ${seconds.toFixed(1)} s; holding`);
  await settle(holdMs);
  const after = await Promise.all(variant.nodePorts.map(nodeGauges));
  const nginxAfter = rssBytes(nginxPids());
  const perNode = variant.nodePorts.map((port, i) => ({
    node: nodeName(port),
    connections: (after[i]?.clients ?? 0) - (before[i]?.clients ?? 0),
    heapDeltaBytes: (after[i]?.heap ?? 0) - (before[i]?.heap ?? 0),
    rssDelta: (after[i]?.rss ?? 0) - (before[i]?.rss ?? 0),
  }));
  const held = perNode.reduce((a, n) => a + n.connections, 0);
  return {
    target,
    opened,
    failed,
    firstError: replies.find((r) => r.firstError)?.firstError,
    acceptedPerSec: Math.round(opened / seconds),
    heapPerConnectionBytes: Math.round(
      perNode.reduce((a, n) => a + n.heapDeltaBytes, 0) / Math.max(1, held),
    ),
    nodeRssPerConnectionBytes: Math.round(
      perNode.reduce((a, n) => a + n.rssDelta, 0) / Math.max(1, held),
    ),
    nginxRssPerConnectionBytes: Math.round((nginxAfter - nginxBefore) / Math.max(1, opened)),
    perNode: perNode.map(({ node, connections, heapDeltaBytes }) => ({
      node,
      connections,
      heapDeltaBytes,
    })),
  };
}
