// npm run bench [-- --quick] [-- --only fanout,scaling,connections,http,hashing]: the benchmark
// suite. Starts every variant itself, drives each with the same load generators, and writes
// results JSON, a Markdown table and SVG charts to scripts/bench/results/ (only a full run with
// nothing failed; a quick run's or a partial run's go to RUN_DIR/bench/, with a time-stamped
// copy of every run's JSON).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from '../services/node/config.ts';
import { HEARTBEAT_S } from '../services/node/socket-options.ts';
import { Generators } from './bench/load/generators.ts';
import { svgCurves } from './bench/plot.ts';
import { holdConnections, socketIoAlone } from './bench/scenarios/connections.ts';
import {
  connect,
  type FanoutResult,
  type FanoutSettings,
  fixedLoad,
  searchCapacity,
} from './bench/scenarios/fanout.ts';
import { hashDistribution } from './bench/scenarios/hashing.ts';
import { httpThroughNginx } from './bench/scenarios/http.ts';
import {
  failedPoint,
  QUICK_SHAPES,
  type ScalingPoint,
  SHAPES,
  scaleShapes,
} from './bench/scenarios/scaling.ts';
import { markdown, type Results, svgChart, targets } from './bench/summary.ts';
import {
  ALL_VARIANTS,
  LABELS,
  lendKit,
  returnKit,
  startKitVariant,
  startVariant,
  stopVariantsOnSignal,
  type Variant,
  type VariantName,
} from './bench/variants.ts';
import { loadKitConfig, readEnv } from './kit/config.ts';
import { fail, shortPath } from './kit/report.ts';
import { ensureSystemPackages, NGINX, REDIS, type SystemPackage } from './kit/system-packages.ts';

const HAPROXY: SystemPackage = { binary: '/usr/sbin/haproxy', apt: 'haproxy' };
const WRK: SystemPackage = { binary: '/usr/bin/wrk', apt: 'wrk' };
const SCENARIOS = ['fanout', 'scaling', 'connections', 'http', 'hashing'] as const;
type Scenario = (typeof SCENARIOS)[number];

let args: { quick?: boolean; only?: string; variants?: string };
try {
  args = parseArgs({
    options: { quick: { type: 'boolean' }, only: { type: 'string' }, variants: { type: 'string' } },
  }).values;
} catch (error) {
  fail(
    'bench',
    `${(error as Error).message} (usage: npm run bench -- [--quick] [--only ${SCENARIOS.join(',')}] [--variants plain,kit,…])`,
    'KIT_ERR_USAGE',
  );
}
const quick = args.quick === true;
const only = (args.only?.split(',') ?? [...SCENARIOS]) as Scenario[];
for (const s of only)
  if (!SCENARIOS.includes(s))
    fail('bench', `unknown scenario "${s}" (one of ${SCENARIOS.join(', ')})`, 'KIT_ERR_USAGE');

// A quick run is a smoke test (npm test runs it): two rates, no bisection.
const FANOUT: FanoutSettings = quick
  ? {
      subscribers: 200,
      publishers: 4,
      stepMs: 600,
      // Low enough that every variant passes it on a busy machine (a CI run saw the plain
      // process miss p99 < 50 ms at 100 publications/s once, its one try).
      firstRate: 50,
      growth: 4,
      maxSteps: 2,
      precision: 4,
      rounds: 1,
      fixedRounds: 1,
      again: false,
      drainMs: 300,
      payloadBytes: 100,
    }
  : {
      subscribers: 500,
      publishers: 10,
      stepMs: 4000,
      firstRate: 25,
      growth: 2,
      maxSteps: 10,
      precision: 0.03,
      rounds: 3,
      fixedRounds: 5,
      again: true,
      drainMs: 1000,
      payloadBytes: 100,
    };
/** Connections held in steps, through nginx (each step adds to the last). */
const CONNECTION_STEPS = quick ? [1_000, 2_000] : [5_000, 10_000, 20_000, 50_000];
/** The longer heartbeat the connection steps are run with again (full runs). */
const RELAXED_HEARTBEAT = 15;
/** Connections a plain Socket.IO process holds for its heap per connection. */
const ALONE = quick ? 1_000 : 10_000;
/** Deliveries per second every scaling shape is measured at. */
const SCALING_RATE = quick ? 4_000 : 20_000;
const SCALING_VARIANTS: VariantName[] = quick ? ['kit'] : ['kit', 'cluster'];
const HTTP = quick ? { rounds: 1, seconds: 2 } : { rounds: 5, seconds: 5 };
const HASH_CLIENTS = quick ? 1_000 : 4_000;
/** Run only when named (--variants): the kit with the streams adapter. */
const OPTIONAL_VARIANTS: VariantName[] = ['kit-streams'];
const VARIANTS = (args.variants?.split(',') ?? ALL_VARIANTS) as VariantName[];
for (const v of VARIANTS)
  if (!ALL_VARIANTS.includes(v) && !OPTIONAL_VARIANTS.includes(v))
    fail(
      'bench',
      `unknown variant "${v}" (one of ${[...ALL_VARIANTS, ...OPTIONAL_VARIANTS].join(', ')})`,
      'KIT_ERR_USAGE',
    );

const began = Date.now();
const clock = () => {
  const s = Math.round((Date.now() - began) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};
const say = (line: string) => process.stderr.write(`[${clock()}] ${line}\n`);

/** First line a command prints about its version (nginx prints it on stderr). */
function version(command: string, args: string[]): string {
  const run = spawnSync(command, args, { encoding: 'utf8' });
  return `${run.stdout ?? ''}${run.stderr ?? ''}`.trim().split('\n')[0] ?? '?';
}

/**
 * Whether `perf stat` can count instructions here (a figure that holds still on a noisy machine);
 * a virtual machine without hardware counters answers `<not supported>`.
 */
function instructionCounting(): string {
  const run = spawnSync('perf', ['stat', '-x,', '-e', 'instructions', 'true'], {
    encoding: 'utf8',
  });
  if (run.error) return `perf stat: not installed (${(run.error as Error).message})`;
  const line = `${run.stderr ?? ''}`.split('\n').find((l) => l.includes('instructions')) ?? '';
  return line.startsWith('<not supported>') || line.startsWith('<not counted>') || !line
    ? `perf stat: instructions ${line.split(',')[0] || 'not reported'} (no hardware counters on this machine): CPU seconds only`
    : 'perf stat: counts instructions';
}

function machine(): Record<string, string> {
  return {
    cpu: `${cpus().length} × ${cpus()[0]?.model.trim() ?? '?'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(0)} GiB (${(freemem() / 2 ** 30).toFixed(0)} GiB free at start)`,
    kernel: `Linux ${release()}`,
    node: process.version,
    nginx: version(NGINX.binary, ['-v']),
    redis: version(REDIS.binary, ['--version']),
    haproxy: version(HAPROXY.binary, ['-v']),
    counters: instructionCounting(),
  };
}

/** Every variant in turn; one that fails is reported as such and the others still run. */
async function fanoutAll(): Promise<Pick<Results, 'fanout' | 'fanoutFailures'>> {
  const results: FanoutResult[] = [];
  const failures: NonNullable<Results['fanoutFailures']> = [];
  let fixedRate: number | undefined;
  for (const name of VARIANTS) {
    say(`fan-out: starting ${name}`);
    let variant: Variant | undefined;
    let generators: Generators | undefined;
    try {
      variant = await startVariant(name);
      generators = await Generators.start(quick ? 2 : 3);
      await connect(variant, generators, FANOUT, say);
      const result = await searchCapacity(variant, generators, FANOUT, say);
      // The plain process runs first: half its capacity is the fixed load for everyone.
      fixedRate ??= Math.max(FANOUT.firstRate, Math.round(result.bestRate / 2));
      result.fixed = await fixedLoad(variant, generators, FANOUT, fixedRate);
      say(
        `${name}: best ${result.best.toLocaleString('en')} delivered/s; at ${fixedRate} pub/s p50 ${result.fixed.p50.toFixed(1)} ms, ` +
          `p99 ${result.fixed.p99.toFixed(1)} ms, ${result.fixed.cpuPerMillion.toFixed(1)} CPU s per million`,
      );
      results.push(result);
    } catch (error) {
      const message = (error as Error).message.split('\n')[0] as string;
      say(`fan-out: ${name} failed, going on without it: ${message}`);
      failures.push({ variant: name, label: LABELS[name], error: message });
    } finally {
      await generators?.stop();
      await variant?.stop().catch((error: Error) => say(`stopping ${name}: ${error.message}`));
    }
  }
  return { fanout: results, fanoutFailures: failures };
}

/** The scaling shapes on each of SCALING_VARIANTS; a variant that fails to start is recorded. */
async function scalingAll(): Promise<ScalingPoint[]> {
  const points: ScalingPoint[] = [];
  for (const name of SCALING_VARIANTS) {
    say(`scaling: starting ${name}`);
    let variant: Variant | undefined;
    let generators: Generators | undefined;
    try {
      variant = await startVariant(name);
      generators = await Generators.start(quick ? 2 : 3);
      points.push(
        ...(await scaleShapes(
          variant,
          generators,
          quick ? QUICK_SHAPES : SHAPES,
          FANOUT,
          SCALING_RATE,
          say,
        )),
      );
    } catch (error) {
      const message = (error as Error).message.split('\n')[0] as string;
      say(`scaling: ${name} failed: ${message}`);
      points.push(
        ...(quick ? QUICK_SHAPES : SHAPES).map((shape) =>
          failedPoint(shape, name, LABELS[name], message),
        ),
      );
    } finally {
      await generators?.stop();
      await variant?.stop().catch((error: Error) => say(`stopping ${name}: ${error.message}`));
    }
  }
  return points;
}

/** Scenarios, or parts of one, that failed; the rest of the run goes on. */
const scenarioFailures: NonNullable<Results['scenarioFailures']> = [];

/** The connection steps on a fresh kit with a heartbeat of `heartbeatS`. */
async function connectionSteps(heartbeatS: number) {
  const env = heartbeatS === HEARTBEAT_S.default ? {} : { HEARTBEAT: String(heartbeatS) };
  const kit = await startKitVariant({ env });
  let generators: Generators | undefined;
  try {
    generators = await Generators.start(quick ? 2 : 4);
    return await holdConnections(kit, generators, CONNECTION_STEPS, say, quick, heartbeatS);
  } finally {
    await generators?.stop();
    await kit.stop();
  }
}

async function connectionsAll(): Promise<NonNullable<Results['connections']>> {
  const steps = await connectionSteps(2);
  let relaxed: NonNullable<Results['connections']>['relaxed'];
  let failure: string | undefined;
  if (!quick) {
    say(`connections: again with HEARTBEAT=${RELAXED_HEARTBEAT}`);
    // Its failure is reported, and what the default measured is kept.
    try {
      relaxed = { heartbeatS: RELAXED_HEARTBEAT, steps: await connectionSteps(RELAXED_HEARTBEAT) };
    } catch (error) {
      failure = `HEARTBEAT=${RELAXED_HEARTBEAT}: ${(error as Error).message.split('\n')[0]}`;
    }
  }
  const plain = await startVariant('plain');
  let generators: Generators | undefined;
  try {
    generators = await Generators.start(quick ? 1 : 2);
    const alone = await socketIoAlone(plain, generators, ALONE, say);
    if (failure) scenarioFailures.push({ scenario: 'connections', error: failure });
    return { steps, relaxed, socketIoAlone: alone };
  } finally {
    await generators?.stop();
    await plain.stop();
  }
}

async function main(): Promise<void> {
  await ensureSystemPackages([NGINX, REDIS, HAPROXY, WRK], say);
  say(`bench (${quick ? 'quick' : 'full'}): ${only.join(', ')}`);
  const partial: Omit<Results, 'targets'> = {
    command: `npm run bench${quick ? ' -- --quick' : ''}`,
    mode: quick ? 'quick' : 'full',
    startedAt: new Date(began).toISOString(),
    durationSeconds: 0,
    machine: machine(),
    settings: {
      ...FANOUT,
      connectionSteps: CONNECTION_STEPS,
      socketIoAlone: ALONE,
      scalingDeliveriesPerSec: SCALING_RATE,
      http: HTTP,
      hashClients: HASH_CLIENTS,
    },
    fanout: [],
    scenarioFailures,
  };
  // Stopped however the scenarios end (a quick run's kit is started detached).
  if (quick) lendKit();
  try {
    await scenarios(partial);
  } finally {
    await returnKit();
  }
  await report(partial);
}

/** Every scenario asked for, in turn; one that fails is reported and the others still run. */
async function scenarios(partial: Omit<Results, 'targets'>): Promise<void> {
  /** A scenario that fails is reported and the others still run. */
  const scenario = async (name: Scenario, run: () => Promise<void>) => {
    if (!only.includes(name)) return;
    try {
      await run();
    } catch (error) {
      const message = (error as Error).message.split('\n')[0] as string;
      say(`${name} failed, going on without it: ${message}`);
      scenarioFailures.push({ scenario: name, error: message });
    }
  };
  await scenario('fanout', async () => {
    Object.assign(partial, await fanoutAll());
  });
  await scenario('scaling', async () => {
    partial.scaling = await scalingAll();
  });
  await scenario('connections', async () => {
    partial.connections = await connectionsAll();
  });
  await scenario('http', async () => {
    const kit = await startKitVariant();
    try {
      partial.http = await httpThroughNginx(
        kit.url,
        `http://127.0.0.1:${kit.nodePorts[0]}`,
        HTTP.rounds,
        HTTP.seconds,
        say,
        () => kit.pids(),
        availableParallelism(),
      );
    } finally {
      await kit.stop();
    }
  });
  await scenario('hashing', async () => {
    partial.hashing = await hashDistribution(HASH_CLIENTS, say);
  });
}

/** The run's figures: written where they belong, printed, and its failures made its exit code. */
async function report(partial: Omit<Results, 'targets'>): Promise<void> {
  partial.durationSeconds = Math.round((Date.now() - began) / 1000);

  const results: Results = { ...partial, targets: targets(partial) };
  const failures = [
    ...(results.fanoutFailures ?? []).map((f) => `fan-out ${f.variant} (${f.error})`),
    ...(results.scaling ?? [])
      .filter((p) => p.failed)
      .map((p) => `scaling ${p.variant} ${p.subscribers}/${p.rooms} (${p.failed})`),
    ...(results.scenarioFailures ?? []).map((f) => `${f.scenario} (${f.error})`),
  ];
  // A whole full run's figures are the ones README quotes and the repository keeps; a quick
  // run's, a partial one's, and every run's time-stamped copy are generated output under RUN_DIR.
  const archive = join(loadKitConfig(readEnv()).runDir, 'bench');
  const whole =
    !quick && failures.length === 0 && only.length === SCENARIOS.length && !args.variants;
  const out = whole ? join(ROOT, 'scripts/bench/results') : archive;
  mkdirSync(out, { recursive: true });
  mkdirSync(archive, { recursive: true });
  const stem = quick ? 'quick' : whole ? 'latest' : 'partial';
  const written = [`${stem}.json`, `${stem}.md`];
  writeFileSync(join(out, `${stem}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(out, `${stem}.md`), markdown(results));
  for (const [file, svg] of [
    [`${stem}-fanout.svg`, results.fanout.length > 0 ? svgChart(results) : undefined],
    [`${stem}-curves.svg`, svgCurves(results)],
  ] as const) {
    // No chart of an earlier run is left beside this run's figures.
    rmSync(join(out, file), { force: true });
    if (svg === undefined) continue;
    writeFileSync(join(out, file), svg);
    written.push(file);
  }
  writeFileSync(
    join(archive, `${results.startedAt.replace(/[:.]/g, '-')}.json`),
    JSON.stringify(results),
  );
  process.stdout.write(
    `\n${markdown(results)}\nwritten: ${written.map((f) => shortPath(join(out, f))).join(', ')}\n`,
  );
  if (failures.length > 0) fail('bench', `failed: ${failures.join('; ')}`, 'KIT_ERR_BENCH');
}

stopVariantsOnSignal(say);

try {
  await main();
} catch (error) {
  fail('bench', error, 'KIT_ERR_BENCH');
}
