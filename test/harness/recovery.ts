// What a client of a recovering kit checks (ADAPTER=redis-streams, test/fixtures/feed-app.ts):
// no number of a source twice, and no gap unless it was told (`socket.recovered === false`); and a
// backend that posts numbered events to POST /api/emit with an Idempotency-Key, retried until 202.
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { waitFor } from './kit.ts';

interface Tick {
  src: string;
  boot: string;
  n: number;
}

/** What one client saw: connects (recovered or not) and the numbers of each source. */
export class Watcher {
  /** Bumped by a reconnect that was not recovered: numbers may restart after it. */
  epoch = 0;
  reconnects = 0;
  recovered = 0;
  told = 0;
  node = '';
  readonly problems: string[] = [];
  private readonly last = new Map<string, { epoch: number; n: number; offset: unknown }>();
  readonly announced = new Map<number, number>();
  /** The same, per epoch: after being told, a client starts afresh (what it had is void). */
  readonly announcedInEpoch = new Map<string, number>();

  constructor(readonly socket: Socket) {
    let first = true;
    socket.on('connect', () => {
      if (first) {
        first = false;
        return;
      }
      this.reconnects += 1;
      if (socket.recovered) this.recovered += 1;
      else {
        this.told += 1;
        this.epoch += 1;
      }
    });
    socket.on('hello', (h: { node: string }) => {
      this.node = h.node;
    });
    socket.on('tick', (t: Tick, offset: unknown) => this.see(`${t.src}/${t.boot}`, t.n, offset));
    socket.on('announce', (a: { n: number }) => {
      this.announced.set(a.n, (this.announced.get(a.n) ?? 0) + 1);
      const key = `${this.epoch}:${a.n}`;
      this.announcedInEpoch.set(key, (this.announcedInEpoch.get(key) ?? 0) + 1);
    });
  }

  private see(source: string, n: number, offset: unknown): void {
    const before = this.last.get(source);
    this.last.set(source, { epoch: this.epoch, n, offset });
    if (before === undefined) return;
    if (n <= before.n) {
      this.problems.push(`${source}: ${n} (${offset}) again after ${before.n} (${before.offset})`);
    } else if (n !== before.n + 1 && before.epoch === this.epoch) {
      this.problems.push(`${source}: ${before.n} then ${n} without being told`);
    }
  }

  /** Starts a new phase: what came before is not counted. */
  reset(): void {
    this.reconnects = this.recovered = this.told = 0;
    this.problems.length = 0;
    this.announced.clear();
    this.announcedInEpoch.clear();
  }
}

/**
 * POST /api/emit at `perSecond` through `post` (which answers the HTTP status, 0 for no answer),
 * each event numbered, with `<phase>-<n>` as its Idempotency-Key, retried until 202.
 */
export function emitter(
  perSecond: number,
  phase: string,
  post: (body: string, idempotencyKey: string) => Promise<number>,
) {
  const acked = new Set<number>();
  const statuses = new Map<number, number>();
  let n = 0;
  let stopped = false;
  const pending = new Set<Promise<void>>();
  const send = async (k: number) => {
    for (let attempt = 0; ; attempt++) {
      const status = await post(
        JSON.stringify({ event: 'announce', data: { n: k }, room: 'feed' }),
        `${phase}-${k}`,
      );
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status === 202) {
        acked.add(k);
        return;
      }
      if (attempt > 100) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const started = Date.now();
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * perSecond) / 1000);
    while (!stopped && n < due) {
      const p = send(n++).finally(() => pending.delete(p));
      pending.add(p);
    }
  }, 10);
  return {
    acked,
    statuses,
    sent: () => n,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all(pending);
    },
  };
}

/**
 * After a phase: what every client saw, printed, then asserted. No number twice, no gap without
 * being told, no emit twice without being told in between, every acknowledged emit to every client
 * that was never told it lost continuity, and every emit acknowledged in the end.
 */
export function judge(what: string, watchers: readonly Watcher[], api: ReturnType<typeof emitter>) {
  const sum = (f: (w: Watcher) => number) => watchers.reduce((s, w) => s + f(w), 0);
  const outcome = {
    reconnects: sum((w) => w.reconnects),
    recovered: sum((w) => w.recovered),
    told: sum((w) => w.told),
  };
  const problems = watchers.flatMap((w) => w.problems);
  const continuous = watchers.filter((w) => w.told === 0);
  const missing = continuous.flatMap((w) => [...api.acked].filter((k) => !w.announced.has(k)));
  // Twice to one client without being told in between. An emit the stream lost in a failover
  // after some clients had it is published again by its caller's retry: those clients were told.
  const twice = watchers.flatMap((w) => [...w.announcedInEpoch].filter(([, c]) => c > 1));
  console.log(
    `# ${what}: ${outcome.reconnects} reconnects, ${outcome.recovered} recovered, ${outcome.told} told recovery failed; ` +
      `${api.acked.size} of ${api.sent()} emits acknowledged (statuses ${JSON.stringify(Object.fromEntries(api.statuses))}); ` +
      `${problems.length} gaps or repeats; ${missing.length} acknowledged emits missing, ${twice.length} delivered twice`,
  );
  for (const w of watchers.filter((x) => x.problems.length > 0).slice(0, 5)) {
    console.log(`#   ${w.node} (${w.reconnects} reconnects): ${w.problems.slice(0, 4).join('; ')}`);
  }
  assert.deepEqual(problems.slice(0, 10), [], 'no number twice, no gap without being told');
  assert.deepEqual(twice.slice(0, 10), [], 'no emit delivered twice');
  assert.equal(missing.length, 0, 'every acknowledged emit reached every continuous client');
  assert.equal(api.acked.size, api.sent(), 'every emit was acknowledged in the end');
  return outcome;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One phase: `disturb` while the nodes tick and a backend posts numbered emits at `perSecond`
 * through `post`; once every client is connected again, the emits stop and every client is
 * judged. Returns what happened, with the emits acknowledged.
 */
export async function throughPhase(phase: {
  what: string;
  watchers: readonly Watcher[];
  perSecond: number;
  post: (body: string, idempotencyKey: string) => Promise<number>;
  disturb: () => Promise<void>;
}) {
  const { what, watchers } = phase;
  for (const w of watchers) w.reset();
  const api = emitter(phase.perSecond, `${what.replace(/\W+/g, '-')}-${Date.now()}`, phase.post);
  try {
    await pause(500);
    await phase.disturb();
    await waitFor(
      'every client connected again',
      () => watchers.every((w) => w.socket.connected),
      30_000,
    );
    await pause(1000);
  } finally {
    await api.stop();
  }
  await pause(1000);
  return { ...judge(what, watchers, api), acked: api.acked };
}
