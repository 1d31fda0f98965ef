// A node's Prometheus figures, read from its own port on loopback (the only place that serves
// them), for tests that watch what an attack costs a node.

export interface NodeFigures {
  heapUsedBytes: number;
  rssBytes: number;
  /** Longest event-loop delay since the previous read (prom-client resets it on every read). */
  eventLoopMaxSeconds: number;
  value(name: string): number;
}

export async function nodeFigures(port: number): Promise<NodeFigures> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (name: string) => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
    return match ? Number(match[1]) : Number.NaN;
  };
  return {
    heapUsedBytes: value('nodejs_heap_size_used_bytes'),
    rssBytes: value('process_resident_memory_bytes'),
    eventLoopMaxSeconds: value('nodejs_eventloop_lag_max_seconds'),
    value,
  };
}

export const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
