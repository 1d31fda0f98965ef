// The bench's outputs: results JSON, Markdown tables and the targets, all from one run (the
// charts are plot.ts's and svgChart below).
import type { ConnectionsResult, ConnectionsStep } from './scenarios/connections.ts';
import type { FanoutResult } from './scenarios/fanout.ts';
import type { Distribution } from './scenarios/hashing.ts';
import type { HttpResult } from './scenarios/http.ts';
import type { ScalingPoint } from './scenarios/scaling.ts';

export interface Target {
  what: string;
  goal: string;
  measured: string;
  met: boolean;
}

export interface Results {
  command: string;
  mode: 'quick' | 'full';
  startedAt: string;
  durationSeconds: number;
  machine: Record<string, string>;
  settings: Record<string, unknown>;
  fanout: FanoutResult[];
  /** Fan-out variants that could not be measured, and why; the others still are. */
  fanoutFailures?: { variant: string; label: string; error: string }[];
  /** Scenarios that failed as a whole (the others still ran). */
  scenarioFailures?: { scenario: string; error: string }[];
  scaling?: ScalingPoint[];
  connections?: ConnectionsResult;
  http?: HttpResult;
  hashing?: Distribution[];
  targets: Target[];
}

const n = (x: number, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '–';
const kb = (bytes: number) => `${n(bytes / 1024, 1)} kB`;

export function targets(r: Omit<Results, 'targets'>): Target[] {
  const out: Target[] = [];
  const by = (name: string) => r.fanout.find((f) => f.variant === name);
  const kit = by('kit');
  const ratio = (other: string, goal: number) => {
    const o = by(other);
    const failed = r.fanoutFailures?.find((f) => f.variant === other || f.variant === 'kit');
    if (failed) {
      out.push({
        what: `kit room fan-out vs ${failed.variant === 'kit' ? other : failed.label}`,
        goal: `≥ ${goal} ×`,
        measured: `not measured: ${failed.variant} failed (${failed.error})`,
        met: false,
      });
      return;
    }
    if (!kit || !o) return;
    // A variant that never met the latency limit delivered 0 within it: any kit figure beats it.
    const value = o.best === 0 ? (kit.best > 0 ? Number.POSITIVE_INFINITY : 0) : kit.best / o.best;
    out.push({
      what: `kit room fan-out vs ${o.label}`,
      goal: `≥ ${goal} ×`,
      measured: `${Number.isFinite(value) ? `${n(value, 2)} ×` : 'only the kit met p99 < 50 ms'} (${n(kit.best)} vs ${n(o.best)} delivered/s)`,
      met: value >= goal,
    });
  };
  ratio('plain', 0.9);
  ratio('cluster', 1.0);
  ratio('kit-haproxy', 1.0);
  ratio('docs-nginx', 1.3);
  ratio('raw-ws', 0.35);
  // What a delivery costs the servers, the figure that separates the variants (capacity is
  // bounded by the generators sharing the cores).
  const cpuRatio = (other: string, goal: number) => {
    const o = by(other);
    if (!kit?.fixed || !o?.fixed) return;
    const value = kit.fixed.cpuPerMillion / o.fixed.cpuPerMillion;
    out.push({
      what: `kit server CPU per million deliveries vs ${o.label}`,
      goal: `≤ ${goal} ×`,
      measured: `${n(value, 2)} × (${n(kit.fixed.cpuPerMillion, 1)} vs ${n(o.fixed.cpuPerMillion, 1)} s)`,
      met: value <= goal,
    });
  };
  cpuRatio('cluster', 1.15);
  cpuRatio('docs-nginx', 0.75);
  const plain = by('plain');
  if (plain?.fixed) {
    const heaviest = Math.max(...r.fanout.map((f) => f.fixed?.generatorCpuPerMillion ?? 0));
    out.push({
      what: 'load generators: CPU per million deliveries, at most (any variant)',
      goal: `< the plain process's (${n(plain.fixed.cpuPerMillion, 1)} s)`,
      measured: `${n(heaviest, 1)} s`,
      met: heaviest < plain.fixed.cpuPerMillion,
    });
  }
  if (kit?.fixed && plain?.fixed) {
    out.push({
      what: `kit p50 at half the plain process's capacity (${n(plain.fixed.rate)} pub/s)`,
      goal: `≤ plain p50 + 1 ms (${n(plain.fixed.p50 + 1, 1)} ms)`,
      measured: `${n(kit.fixed.p50, 1)} ms`,
      met: kit.fixed.p50 <= plain.fixed.p50 + 1,
    });
    out.push({
      what: `kit p99 at half the plain process's capacity (${n(plain.fixed.rate)} pub/s)`,
      goal: `≤ plain p99 + 2 ms (${n(plain.fixed.p99 + 2, 1)} ms)`,
      measured: `${n(kit.fixed.p99, 1)} ms`,
      met: kit.fixed.p99 <= plain.fixed.p99 + 2,
    });
  }
  const last = r.connections?.steps.at(-1);
  if (r.connections && last) {
    const held = (steps: ConnectionsStep[]) => {
      const end = steps.at(-1) as ConnectionsStep;
      const failed = steps.reduce((a, s) => a + s.failed, 0);
      return {
        text: `${n(end.opened)} open (the nodes held ${n(end.held)}), ${n(failed)} failed`,
        met: failed === 0 && end.opened >= end.target && end.held >= end.target,
      };
    };
    // One target per heartbeat: the default's, and the longer one's where it was run.
    const kit = held(r.connections.steps);
    out.push({
      what: `${n(last.target)} concurrent connections through nginx, HEARTBEAT=2 (the default)`,
      goal: 'all held, no error',
      measured: kit.text,
      met: kit.met,
    });
    const relaxed = r.connections.relaxed;
    if (relaxed && relaxed.steps.length > 0) {
      const other = held(relaxed.steps);
      out.push({
        what: `${n(relaxed.steps.at(-1)?.target ?? 0)} concurrent connections through nginx, HEARTBEAT=${relaxed.heartbeatS}`,
        goal: 'all held, no error',
        measured: other.text,
        met: other.met,
      });
    }
    const alone = r.connections.socketIoAlone;
    out.push({
      what: `node heap per idle connection, after GC, at ${n(last.target)}`,
      goal: '≤ 6 kB',
      measured: `${kb(last.heapPerConnectionBytes)}${alone ? ` (one plain Socket.IO process: ${kb(alone.heapPerConnectionBytes)})` : ''}`,
      met: last.heapPerConnectionBytes <= 6 * 1024,
    });
    out.push({
      what: `nginx RSS per idle connection, at ${n(last.target)}`,
      goal: '≤ 10 kB',
      measured: kb(last.nginxRssPerConnectionBytes),
      met: last.nginxRssPerConnectionBytes <= 10 * 1024,
    });
  }
  if (r.http) {
    out.push({
      what: 'HTTP through nginx vs one node direct',
      goal: '≥ 0.8 ×',
      measured: `${n(r.http.ratio, 2)} × (${n(r.http.nginxMedian)} vs ${n(r.http.directMedian)} req/s)`,
      met: r.http.ratio >= 0.8,
    });
  }
  return out;
}

/** `program`'s part (every process of it: nginx's master and workers) of a by-program split. */
export const programShare = (split: Record<string, number> | undefined, program: string) =>
  Object.entries(split ?? {})
    .filter(([name]) => name.split(' ')[0] === program)
    .reduce((a, [, seconds]) => a + seconds, 0);

/** nginx's part (master and workers) of a by-program split. */
export const nginxShare = (split: Record<string, number> | undefined) =>
  programShare(split, 'nginx');

const byProgram = (split: Record<string, number> | undefined) =>
  split
    ? Object.entries(split)
        .sort((a, b) => b[1] - a[1])
        .map(([name, seconds]) => `${name} ${n(seconds, 1)}`)
        .join(', ')
    : '–';

export function markdown(r: Results): string {
  const lines: string[] = [];
  lines.push(
    `Measured with \`${r.command}\` on ${r.startedAt.slice(0, 10)} (${r.mode} mode, ${n(r.durationSeconds)} s).`,
  );
  lines.push(`Machine: ${Object.values(r.machine).join('; ')}.`, '');
  lines.push(
    `**Room fan-out** (${r.fanout[0]?.subscribers ?? '?'} subscribers in one room, medians of ${r.settings.rounds} rounds, ${r.settings.fixedRounds ?? r.settings.rounds} at the fixed load; the load generators share the machine's cores):`,
    '',
    '| variant | server CPU s per million delivered | by program | delivered msgs/s, p99 < 50 ms | per round | p50 / p99 at fixed load | (generators, CPU s per million) |',
    '| --- | ---: | --- | ---: | --- | --- | ---: |',
  );
  for (const f of r.fanout) {
    const fixed = f.fixed
      ? `${n(f.fixed.p50, 1)} / ${n(f.fixed.p99, 1)} ms at ${n(f.fixed.rate)} pub/s`
      : '–';
    lines.push(
      `| ${f.label} | ${f.fixed ? n(f.fixed.cpuPerMillion, 1) : '–'} | ${byProgram(f.fixed?.cpuPerMillionByProcess)} | ${n(f.best)} | ${f.bestPerRound.map((b) => n(b)).join(', ')} | ${fixed} | ${f.fixed?.generatorCpuPerMillion !== undefined ? n(f.fixed.generatorCpuPerMillion, 1) : '–'} |`,
    );
  }
  for (const f of r.fanoutFailures ?? [])
    lines.push(`| ${f.label} | failed: ${f.error} | | | | | |`);
  if (r.scaling && r.scaling.length > 0) {
    lines.push(
      '',
      `**How a delivery's cost grows** (every shape at ${n(Number(r.settings.scalingDeliveriesPerSec))} deliveries/s; server CPU s per million delivered, p99):`,
      '',
      '| variant | subscribers | rooms | pub/s | delivered/s | CPU s per million | p99 |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const p of r.scaling) {
      lines.push(
        p.failed
          ? `| ${p.label} | ${n(p.subscribers)} | ${n(p.rooms)} | ${n(p.rate)} | failed: ${p.failed} | | |`
          : `| ${p.label} | ${n(p.subscribers)} | ${n(p.rooms)} | ${n(p.rate)} | ${n(p.deliveredPerSec)}${p.saturated ? ' (fell behind)' : ''} | ${n(p.cpuPerMillion, 1)} | ${n(p.p99, 1)} ms |`,
      );
    }
  }
  if (r.connections) {
    lines.push(
      '',
      '**Connections through nginx**, opened in steps and held (per connection: node heap after a full GC, node and nginx RSS; idle CPU: the servers over their no-connection baseline):',
      '',
      '| connections | open | held by the nodes | failed | ramp, accepted/s | node heap | node RSS | nginx RSS | idle CPU, % of a core per 10k |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    const series = [
      { heartbeat: 2, steps: r.connections.steps },
      ...(r.connections.relaxed
        ? [{ heartbeat: r.connections.relaxed.heartbeatS, steps: r.connections.relaxed.steps }]
        : []),
    ];
    for (const { heartbeat, steps } of series) {
      for (const c of steps) {
        lines.push(
          `| ${n(c.target)}${series.length > 1 ? `, HEARTBEAT=${heartbeat}` : ''} | ${n(c.opened)} | ${n(c.held)} | ${n(c.failed)}${c.firstError ? ` (${c.firstError})` : ''} | ${n(c.acceptedPerSec)} | ${kb(c.heapPerConnectionBytes)} | ${kb(c.nodeRssPerConnectionBytes)} | ${kb(c.nginxRssPerConnectionBytes)} | ${n(c.idleCpuPercentPer10k, 1)} |`,
        );
      }
    }
    const alone = r.connections.socketIoAlone;
    if (alone)
      lines.push(
        '',
        `One plain Socket.IO process holding ${n(alone.connections)} connections directly: heap ${kb(alone.heapPerConnectionBytes)} per connection after a full GC (Socket.IO's own cost, under any node's).`,
      );
  }
  const floor = r.fanout.find((f) => f.variant === 'nginx-floor')?.fixed;
  const cluster = r.fanout.find((f) => f.variant === 'cluster')?.fixed;
  if (floor && cluster) {
    const nginxPart = nginxShare(floor.cpuPerMillionByProcess);
    lines.push(
      '',
      `**nginx's floor**: a bare \`ws\` server behind an nginx that only proxies costs ${n(floor.cpuPerMillion, 1)} CPU s per million deliveries ` +
        `(nginx ${n(nginxPart, 1)}), ${n(floor.cpuPerMillion / cluster.cpuPerMillion, 2)} × cluster + sticky's ${n(cluster.cpuPerMillion, 1)}: ` +
        'no design with nginx in front and a server at least as costly as bare `ws` goes below that ratio.',
    );
  }
  const designFloor = r.fanout.find((f) => f.variant === 'design-floor')?.fixed;
  const kit = r.fanout.find((f) => f.variant === 'kit')?.fixed;
  if (designFloor && cluster) {
    const part = (program: string) =>
      n(programShare(designFloor.cpuPerMillionByProcess, program), 1);
    lines.push(
      '',
      `**The kit's design floor**: four bare \`ws\` servers sharing rooms through a Redis of their own, as the kit's nodes share them, behind an nginx that only proxies (ip_hash) cost ${n(designFloor.cpuPerMillion, 1)} CPU s per million deliveries ` +
        `(nginx ${part('nginx')}, the servers ${part('node')}, Redis ${part('redis-server')}), ${n(designFloor.cpuPerMillion / cluster.cpuPerMillion, 2)} × cluster + sticky's ${n(cluster.cpuPerMillion, 1)}: ` +
        "the kit's design (nginx in front, four processes, Redis between them) with the cheapest server there is" +
        (kit
          ? `. The kit, Socket.IO on the same design, costs ${n(kit.cpuPerMillion, 1)}, ${n(kit.cpuPerMillion / designFloor.cpuPerMillion, 2)} × its floor.`
          : '.'),
    );
  }
  const docsFloor = r.fanout.find((f) => f.variant === 'docs-floor')?.fixed;
  if (floor && docsFloor) {
    lines.push(
      '',
      `**The docs' floor**: the same bare server behind the docs' nginx example (TCP, no keepalive) costs ${n(docsFloor.cpuPerMillion, 1)} s per million ` +
        `(nginx ${n(nginxShare(docsFloor.cpuPerMillionByProcess), 1)}); behind the kit's way in, ${n(floor.cpuPerMillion, 1)}: ` +
        `${n(floor.cpuPerMillion / docsFloor.cpuPerMillion, 2)} ×. Servers that cost more than the bare one, alike in both, bring the kit against the docs' example closer to 1 ×, never below that.`,
    );
  }
  for (const f of r.scenarioFailures ?? [])
    lines.push('', `**${f.scenario}**: failed (${f.error}).`);
  if (r.http) {
    const h = r.http;
    lines.push(
      '',
      `**HTTP** \`GET ${h.path}\`, wrk, ${h.connections} connections, ${h.seconds} s × ${h.direct.length} rounds: ` +
        `node direct ${n(h.directMedian)} req/s, through nginx ${n(h.nginxMedian)} req/s (${n(h.ratio, 2)} ×).` +
        (h.directCost && h.nginxCost && h.nginxBudgetFor08 !== undefined
          ? ` CPU µs per request: direct node ${n(h.directCost.node, 1)}, wrk ${n(h.directCost.wrk, 1)}; through nginx node ${n(h.nginxCost.node, 1)}, ` +
            `nginx ${n(h.nginxCost.nginx, 1)}, wrk ${n(h.nginxCost.wrk, 1)}. On these cores 0.8 × would leave nginx ${n(h.nginxBudgetFor08, 1)} µs per request.`
          : ''),
    );
  }
  if (r.hashing) {
    lines.push(
      '',
      '**Hashing**: clients per node (4 nodes), and the busiest node over the mean:',
      '',
      '| address set | clients | ip_hash | imbalance | hash $remote_addr consistent | imbalance |',
      '| --- | ---: | --- | ---: | --- | ---: |',
    );
    for (const d of r.hashing) {
      lines.push(
        `| ${d.set} | ${n(d.clients)} | ${d.ipHash.join(' / ')} | ${n(d.ipHashImbalance, 2)} | ${d.consistent.join(' / ')} | ${n(d.consistentImbalance, 2)} |`,
      );
    }
  }
  lines.push(
    '',
    '**Targets**:',
    '',
    '| target | goal | measured | met |',
    '| --- | --- | --- | --- |',
  );
  for (const t of r.targets)
    lines.push(`| ${t.what} | ${t.goal} | ${t.measured} | ${t.met ? 'yes' : '**no**'} |`);
  return `${lines.join('\n')}\n`;
}

const escapeXml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Horizontal bars: fan-out capacity per variant, and p99 at the fixed load. */
export function svgChart(r: Results): string {
  const rows = r.fanout;
  const width = 860;
  const rowHeight = 34;
  const left = 300;
  const barMax = width - left - 140;
  const top = 50;
  const maxBest = Math.max(1, ...rows.map((f) => f.best));
  const p99s = rows.map((f) => f.fixed?.p99 ?? 0);
  const maxP99 = Math.max(1, ...p99s);
  const section2 = top + rows.length * rowHeight + 60;
  const height = section2 + rows.length * rowHeight + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="16" y="28" font-size="16" font-weight="bold">Room fan-out: delivered messages/s with p99 &lt; 50 ms (median of ${r.settings.rounds})</text>`,
  ];
  rows.forEach((f, i) => {
    const y = top + i * rowHeight;
    const w = Math.max(1, (f.best / maxBest) * barMax);
    const colour = f.variant === 'kit' ? '#2563eb' : '#94a3b8';
    parts.push(
      `<text x="${left - 10}" y="${y + 18}" text-anchor="end">${escapeXml(f.label)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${w.toFixed(1)}" height="20" fill="${colour}"/>`,
      `<text x="${left + w + 8}" y="${y + 18}">${n(f.best)}</text>`,
    );
  });
  const fixedRate = rows.find((f) => f.fixed)?.fixed?.rate ?? 0;
  parts.push(
    `<text x="16" y="${section2 - 18}" font-size="16" font-weight="bold">p50 / p99 latency at ${n(fixedRate)} publications/s (half the plain process's capacity)</text>`,
  );
  rows.forEach((f, i) => {
    const y = section2 + i * rowHeight;
    const p99 = f.fixed?.p99 ?? 0;
    const p50 = f.fixed?.p50 ?? 0;
    const w99 = Math.max(1, (p99 / maxP99) * barMax);
    const w50 = Math.max(1, (p50 / maxP99) * barMax);
    const colour = f.variant === 'kit' ? '#2563eb' : '#94a3b8';
    parts.push(
      `<text x="${left - 10}" y="${y + 18}" text-anchor="end">${escapeXml(f.label)}</text>`,
      `<rect x="${left}" y="${y + 4}" width="${w99.toFixed(1)}" height="20" fill="${colour}" opacity="0.45"/>`,
      `<rect x="${left}" y="${y + 4}" width="${w50.toFixed(1)}" height="20" fill="${colour}"/>`,
      `<text x="${left + w99 + 8}" y="${y + 18}">${n(p50, 1)} / ${n(p99, 1)} ms</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
