// The bench's curves, one SVG of small line charts: memory per connection and the ramp against
// connections held, CPU per delivery against subscribers per room and against rooms, and p99
// against load up to saturation (the capacity search's steps).
import type { Results } from './summary.ts';

interface Series {
  name: string;
  points: [number, number][];
}

interface Panel {
  title: string;
  x: string;
  y: string;
  logX?: boolean;
  /** Values above this are drawn at the top edge (a saturated step's p99 runs to seconds). */
  yCap?: number;
  series: Series[];
}

const WIDTH = 460;
const HEIGHT = 340;
const PAD = { left: 62, right: 16, top: 34, bottom: 116 };
const COLOURS = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#9333ea',
  '#ea580c',
  '#0891b2',
  '#64748b',
  '#ca8a04',
];

const escapeXml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const label = (v: number) =>
  Math.abs(v) >= 1000
    ? `${(v / 1000).toLocaleString('en', { maximumFractionDigits: 1 })}k`
    : v.toLocaleString('en', { maximumFractionDigits: Math.abs(v) < 10 ? 1 : 0 });

function panel(spec: Panel, ox: number, oy: number): string {
  const series = spec.series
    .map((s) => ({
      ...s,
      points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && x > 0),
    }))
    .filter((s) => s.points.length > 0);
  const out = [
    `<g transform="translate(${ox},${oy})">`,
    `<text x="${PAD.left}" y="20" font-weight="bold">${escapeXml(spec.title)}</text>`,
  ];
  if (series.length === 0) {
    out.push(`<text x="${PAD.left}" y="${HEIGHT / 2}" fill="#64748b">not measured</text>`, '</g>');
    return out.join('\n');
  }
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series.flatMap((s) => s.points.map(([, y]) => Math.min(y, spec.yCap ?? y)));
  const fx = spec.logX ? Math.log10 : (v: number) => v;
  const [xMin, xMax] = [fx(Math.min(...xs)), fx(Math.max(...xs))];
  // Charts survive negative values (idle CPU under the baseline): the axis takes them in.
  const yMin = Math.min(0, ...ys);
  const yMax = Math.max(...ys, yMin + 1) * 1.1;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const px = (x: number) =>
    PAD.left + (xMax === xMin ? plotW / 2 : ((fx(x) - xMin) / (xMax - xMin)) * plotW);
  const py = (y: number) =>
    PAD.top + plotH - ((Math.min(y, spec.yCap ?? y) - yMin) / (yMax - yMin)) * plotH;
  out.push(
    `<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${PAD.left + plotW}" y2="${PAD.top + plotH}" stroke="#334155"/>`,
    `<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${PAD.top + plotH}" stroke="#334155"/>`,
  );
  for (let i = 0; i <= 4; i++) {
    const v = yMin + ((yMax - yMin) * i) / 4;
    out.push(
      `<line x1="${PAD.left}" y1="${py(v).toFixed(1)}" x2="${PAD.left + plotW}" y2="${py(v).toFixed(1)}" stroke="#e2e8f0"/>`,
      `<text x="${PAD.left - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${label(v)}</text>`,
    );
  }
  // Log axes are labelled at their points (a few steps); linear ones at five even ticks.
  const ticks = spec.logX
    ? [...new Set(xs)].sort((a, b) => a - b)
    : Array.from({ length: 5 }, (_, i) => xMin + ((xMax - xMin) * i) / 4);
  for (const x of ticks) {
    out.push(
      `<text x="${px(x).toFixed(1)}" y="${PAD.top + plotH + 15}" text-anchor="middle" font-size="11">${label(x)}</text>`,
    );
  }
  out.push(
    `<text x="${PAD.left + plotW / 2}" y="${PAD.top + plotH + 32}" text-anchor="middle" font-size="12">${escapeXml(spec.x)}</text>`,
    `<text transform="translate(14,${PAD.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(spec.y)}</text>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const points = [...s.points].sort((a, b) => a[0] - b[0]);
    out.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`,
      ...points.map(
        ([x, y]) =>
          `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${colour}"/>`,
      ),
    );
    // Two to a row, under the x axis's label.
    const lx = PAD.left + (i % 2) * 190;
    const ly = PAD.top + plotH + 50 + Math.floor(i / 2) * 15;
    out.push(
      `<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${colour}"/>`,
      `<text x="${lx + 14}" y="${ly}" font-size="11">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</g>');
  return out.join('\n');
}

/** Every curve the run measured, or undefined when it measured none. */
export function svgCurves(r: Results): string | undefined {
  const panels: Panel[] = [];
  const steps = r.connections?.steps ?? [];
  if (steps.length > 0) {
    const kB = (b: number) => b / 1024;
    panels.push({
      title: 'Memory per idle connection',
      x: 'connections held (log)',
      y: 'kB per connection',
      logX: true,
      series: [
        {
          name: 'node heap (after GC)',
          points: steps.map((s) => [s.target, kB(s.heapPerConnectionBytes)]),
        },
        { name: 'node RSS', points: steps.map((s) => [s.target, kB(s.nodeRssPerConnectionBytes)]) },
        {
          name: 'nginx RSS',
          points: steps.map((s) => [s.target, kB(s.nginxRssPerConnectionBytes)]),
        },
      ],
    });
    panels.push({
      title: 'Connection ramp and idle cost',
      x: 'connections held (log)',
      y: 'accepted/s · % core per 10k',
      logX: true,
      series: [
        {
          name: 'accepted/s ÷ 100',
          points: steps.map((s) => [s.target, s.acceptedPerSec / 100]),
        },
        {
          name: 'idle CPU, HEARTBEAT=2',
          points: steps.map((s) => [s.target, s.idleCpuPercentPer10k]),
        },
        ...(r.connections?.relaxed
          ? [
              {
                name: `idle CPU, HEARTBEAT=${r.connections.relaxed.heartbeatS}`,
                points: r.connections.relaxed.steps.map(
                  (s) => [s.target, s.idleCpuPercentPer10k] as [number, number],
                ),
              },
            ]
          : []),
      ],
    });
  }
  const scaling = (r.scaling ?? []).filter((p) => !p.failed);
  const variants = [...new Set(scaling.map((p) => p.variant))];
  for (const axis of ['subscribers', 'rooms'] as const) {
    const points = scaling.filter((p) => p.axis === axis);
    if (points.length === 0) continue;
    panels.push({
      title:
        axis === 'subscribers'
          ? 'CPU per delivery against room size'
          : `CPU per delivery against rooms (${points[0]?.subscribers} subscribers)`,
      x: axis === 'subscribers' ? 'subscribers in one room (log)' : 'rooms (log)',
      y: 'server CPU s per million',
      logX: true,
      series: variants.map((name) => ({
        name,
        points: points
          .filter((p) => p.variant === name)
          .map((p) => [axis === 'subscribers' ? p.subscribers : p.rooms, p.cpuPerMillion]),
      })),
    });
  }
  if (r.fanout.length > 0) {
    panels.push({
      title: 'p99 against load (capacity search, every step)',
      x: 'delivered messages/s',
      y: 'p99 ms (capped at 100)',
      yCap: 100,
      series: r.fanout.map((f) => ({
        name: f.variant,
        // The median round's steps would hide nothing the others show: every step of every
        // round, the best p99 per rate (a step retried after a hiccup counts once).
        points: [
          ...f.steps
            .flat()
            .reduce((best, s) => {
              const seen = best.get(s.rate);
              if (!seen || s.p99 < seen.p99) best.set(s.rate, s);
              return best;
            }, new Map<number, (typeof f.steps)[number][number]>())
            .values(),
        ].map((s) => [s.deliveredPerSec, s.p99] as [number, number]),
      })),
    });
  }
  if (panels.length === 0) return undefined;
  const columns = 2;
  const rows = Math.ceil(panels.length / columns);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH * columns}" height="${HEIGHT * rows + 40}" font-family="sans-serif" font-size="13">`,
    '<rect width="100%" height="100%" fill="#fff"/>',
    `<text x="16" y="26" font-size="16" font-weight="bold">How cost grows (${escapeXml(r.command)}, ${r.startedAt.slice(0, 10)})</text>`,
    ...panels.map((p, i) => panel(p, (i % columns) * WIDTH, 40 + Math.floor(i / columns) * HEIGHT)),
    '</svg>',
  ];
  return `${parts.join('\n')}\n`;
}
