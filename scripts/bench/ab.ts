// A/B of kit configurations on server CPU per delivery, the bench's headline figure:
//
//   node --import tsx scripts/bench/ab.ts [--reps 3] [--rate 60] [--subscribers 500] [--rooms 1] \
//     [--warmup 90] [--warmup-times 1] [--idle N] \
//     'four:' 'two:nodes=2' 'six:NGINX_WORKERS=6' 'docs:variant=docs-nginx'
//
// Each arm is `name:` and comma-separated settings: `nodes=N`, or a kit variable (`VAR=value`);
// or `variant=` and one of the bench's other variants (the docs' nginx, the plain process, …),
// to read a target's ratio from A B B A runs rather than from one point of a full run.
// The arms run in turn, forwards then backwards (A B B A …), each on a fresh kit with the same
// room and load, so that a machine getting busier or quieter weighs on every arm alike; medians
// and their ratios to the first arm come from this one run.
//
// `--idle N` compares kit arms on what idle connections cost instead: N connections opened
// through nginx and held, the servers' CPU over their no-connection baseline, as the bench's
// connections scenario reads it (% of a core per 10,000 connections).
import { parseArgs } from 'node:util';
import { HEARTBEAT_S } from '../../services/node/socket-options.ts';
import { fail } from '../kit/report.ts';
import { Generators } from './load/generators.ts';
import { holdConnections } from './scenarios/connections.ts';
import { connect, type FanoutSettings, warmedFixedLoad } from './scenarios/fanout.ts';
import { median } from './stats.ts';
import { nginxShare } from './summary.ts';
import {
  LABELS,
  startKitVariant,
  startVariant,
  stoppingEveryVariant,
  stopVariantsOnSignal,
  type VariantName,
} from './variants.ts';

interface Arm {
  name: string;
  /** Another of the bench's variants instead of a kit. */
  variant?: VariantName;
  nodes?: number;
  env: Record<string, string>;
}

/** What launchKit gives every kit of its own: an arm may not change them. */
const OWN = ['PORT', 'NODE_PORTS', 'REDIS_PORT', 'RUN_DIR', 'APP_MODULE'];

function positive(what: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${what}: "${raw}" is not a whole number above 0`);
  return value;
}

function parseArm(text: string): Arm {
  const [name, spec = ''] = text.split(/:(.*)/s) as [string, string?];
  if (!name) throw new Error(`"${text}": an arm is name:settings`);
  const arm: Arm = { name, env: {} };
  for (const setting of spec.split(',').filter(Boolean)) {
    const [key, value] = setting.split(/=(.*)/s) as [string, string?];
    if (value === undefined) throw new Error(`"${setting}" in arm ${name}: expected KEY=value`);
    if (key === 'nodes') arm.nodes = positive(`nodes in arm ${name}`, value);
    else if (key === 'variant') {
      if (!Object.hasOwn(LABELS, value) || value === 'kit')
        throw new Error(
          `variant "${value}" in arm ${name}: one of ${Object.keys(LABELS)
            .filter((v) => v !== 'kit')
            .join(', ')}`,
        );
      arm.variant = value as VariantName;
    } else if (OWN.includes(key))
      throw new Error(`${key} in arm ${name}: the harness gives each kit its own`);
    else if (/^[A-Z][A-Z0-9_]*$/.test(key)) arm.env[key] = value;
    else throw new Error(`"${key}" in arm ${name}: nodes, variant or a kit variable`);
  }
  if (arm.variant && (arm.nodes !== undefined || Object.keys(arm.env).length > 0))
    throw new Error(`arm ${name}: a variant takes no kit settings`);
  return arm;
}

interface Run {
  /** CPU s per million deliveries, or with --idle % of a core per 10,000 idle connections. */
  cpu: number;
  nginx: number;
  p50: number;
  p99: number;
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    reps: { type: 'string', default: '3' },
    rate: { type: 'string', default: '60' },
    subscribers: { type: 'string', default: '500' },
    // The subscribers dealt evenly over this many rooms, each publication to one of them (the
    // scaling scenario's rooms curve: 600 subscribers over 100 rooms at 3333 pub/s).
    rooms: { type: 'string', default: '1' },
    // Before the measured rounds: seconds at `--warmup-times` the rate. A full run's fixed load
    // comes after its capacity search, so its processes are warm. A kit's four nodes warm slower
    // than the cluster's two workers: at 50 pub/s to 500 subscribers their CPU, sampled every
    // 10 s, fell from 21 % of a core at 20 s to 14 % at 60 s and stayed there, a third of the
    // fall in V8's background threads (its compiler and GC helpers), the rest in the main
    // thread; the cluster's held its level from 10 s. Warmed 20 s the kit read 1.60 × the
    // cluster, 120 s 1.36 × (2026-11-23), so an arm gets 90 s unless told otherwise: what an
    // operator's nodes cost after their first minute.
    warmup: { type: 'string', default: '90' },
    'warmup-times': { type: 'string', default: '1' },
    idle: { type: 'string' },
  },
});
let arms: Arm[] = [];
let reps = 0;
let rate = 0;
let subscribers = 0;
let rooms = 1;
let warm = { seconds: 1, times: 1 };
let idle: number | undefined;
try {
  arms = positionals.map(parseArm);
  if (arms.length < 2) throw new Error('give two arms or more');
  reps = positive('--reps', values.reps);
  rate = positive('--rate', values.rate);
  subscribers = positive('--subscribers', values.subscribers);
  rooms = positive('--rooms', values.rooms);
  warm = {
    seconds: positive('--warmup', values.warmup),
    times: positive('--warmup-times', values['warmup-times']),
  };
  if (values.idle !== undefined) {
    idle = positive('--idle', values.idle);
    const variant = arms.find((a) => a.variant);
    if (variant) throw new Error(`--idle compares kits: arm ${variant.name} is a variant`);
  }
} catch (error) {
  fail(
    'ab',
    `${(error as Error).message} (usage: ab.ts [--reps 3] [--rate 60] [--subscribers 500] [--rooms 1] [--idle N] 'a:' 'b:nodes=2')`,
    'KIT_ERR_USAGE',
  );
}
const settings: FanoutSettings = {
  subscribers,
  publishers: 10,
  stepMs: 4000,
  firstRate: rate,
  growth: 2,
  maxSteps: 1,
  precision: 0.03,
  rounds: 1,
  fixedRounds: 3,
  again: false,
  drainMs: 1000,
  payloadBytes: 100,
  rooms,
};
const say = (line: string) => process.stderr.write(`${line}\n`);
stopVariantsOnSignal(say);

/** One arm once: a fresh kit, the room, a warm-up, then the fixed load's rounds. */
async function measure(arm: Arm): Promise<Run> {
  const kit = arm.variant
    ? await startVariant(arm.variant)
    : await startKitVariant({ nodes: arm.nodes, env: arm.env });
  let generators: Generators | undefined;
  try {
    generators = await Generators.start(3);
    if (idle !== undefined) {
      const heartbeatS = Number(arm.env.HEARTBEAT ?? HEARTBEAT_S.default);
      const [held] = await holdConnections(kit, generators, [idle], say, false, heartbeatS);
      if (!held || held.failed > 0 || held.held < idle)
        throw new Error(`arm ${arm.name} held ${held?.held ?? 0} of ${idle} connections`);
      return {
        cpu: held.idleCpuPercentPer10k,
        nginx: Number.NaN,
        p50: Number.NaN,
        p99: Number.NaN,
      };
    }
    await connect(kit, generators, settings, say);
    const fixed = await warmedFixedLoad(kit, generators, settings, rate, warm);
    return {
      cpu: fixed.cpuPerMillion,
      nginx: nginxShare(fixed.cpuPerMillionByProcess),
      p50: fixed.p50,
      p99: fixed.p99,
    };
  } finally {
    await generators?.stop();
    await kit.stop();
  }
}

const describe = (run: Run) =>
  idle !== undefined
    ? `${run.cpu.toFixed(1)} % of a core per 10k idle`
    : `${run.cpu.toFixed(1)} CPU s per million (nginx ${run.nginx.toFixed(1)}), p50 ${run.p50.toFixed(1)} ms, p99 ${run.p99.toFixed(1)} ms`;
const runs = new Map<string, Run[]>(arms.map((a) => [a.name, []]));
try {
  for (let rep = 0; rep < reps; rep++) {
    for (const arm of rep % 2 === 0 ? arms : [...arms].reverse()) {
      const run = await measure(arm);
      runs.get(arm.name)?.push(run);
      say(`rep ${rep + 1} ${arm.name}: ${describe(run)}`);
    }
  }
} catch (error) {
  // A signal came: what failed was stopped under it (or refused to start), and the signal's
  // handler stops the rest. Wait for that rather than exit 1 in the middle, then exit as it does.
  const stopping = stoppingEveryVariant();
  if (!stopping) throw error;
  await stopping;
  process.exit(130);
}
const med = (name: string, key: keyof Run) => median((runs.get(name) ?? []).map((r) => r[key]));
const first = arms[0] as Arm;
// The columns after an arm's name, its ratio to the first arm and before its runs: the fixed
// load's, or with --idle none (its figure is the idle cost).
const extra: [string, (name: string) => string][] =
  idle !== undefined
    ? []
    : [
        ['nginx part', (a) => med(a, 'nginx').toFixed(1)],
        ['p50', (a) => `${med(a, 'p50').toFixed(1)} ms`],
        ['p99', (a) => `${med(a, 'p99').toFixed(1)} ms`],
      ];
const lines = [
  idle !== undefined
    ? `A/B of ${idle.toLocaleString('en')} idle connections, ${reps} runs per arm (medians):`
    : `A/B at ${rate} pub/s to ${settings.subscribers} subscribers${rooms > 1 ? ` over ${rooms} rooms` : ''}, ${reps} runs per arm, warm-up ${warm.seconds} s at ${warm.times} × (medians):`,
  '',
  `| arm | ${idle !== undefined ? '% of a core per 10k' : 'CPU s per million'} | × first | ${extra.map(([head]) => `${head} | `).join('')}runs |`,
  `| --- | ---: | ---: | ${extra.map(() => '---: | ').join('')}--- |`,
  ...arms.map(
    (a) =>
      `| ${a.name} | ${med(a.name, 'cpu').toFixed(1)} | ${(med(a.name, 'cpu') / med(first.name, 'cpu')).toFixed(2)} | ${extra.map(([, cell]) => `${cell(a.name)} | `).join('')}${(runs.get(a.name) ?? []).map((r) => r.cpu.toFixed(1)).join(', ')} |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n`);
