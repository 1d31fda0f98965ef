// Who is online, kept in Redis so that every node answers alike and none waits on another.
// Each node process is an instance (node id + boot id) with a heartbeat, holding per user the
// number of its sockets there. A user whose last socket goes is announced gone only after a
// grace, by whichever node sweeps first, so a client moving to another node is never reported
// gone, and the announcement never depends on the node it left. Instances that stop beating (a
// killed or hung node) are swept by the others.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import type { Redis } from '../node/redis.ts';
import { presenceKey as key } from './presence-keys.ts';
import {
  beatScript,
  connectScript,
  disconnectScript,
  dropScript,
  registerScript,
  sweepScript,
} from './presence-scripts.ts';

export const PRESENCE_TIMING = {
  beatMs: 3_000,
  /** Three missed beats: a node this late is dead or hung, not merely busy. */
  staleMs: 10_000,
  sweepMs: 2_000,
  /** Long enough for a client whose node went away to reconnect to another one. */
  graceMs: 5_000,
} as const;
/** Most users one sweep announces gone; the rest wait for the next sweep. */
const SWEEP_BATCH = 1_000;

export interface PresenceEvents {
  /** Users online again after being announced gone (this node had been swept while it hung). */
  back(users: Array<{ userID: string; username: string }>): void;
  gone(userIDs: string[]): void;
}

export class Presence {
  readonly instance: string;
  /** This node on this host: an earlier instance under it is this node before a restart. */
  private readonly host: string;
  /** This instance's sockets per user: the truth the registry is rebuilt from when lost. */
  private readonly local = new Map<string, { sockets: number; username: string }>();
  private timers: NodeJS.Timeout[] = [];
  private registering: Promise<string[]> | undefined;
  /** Since when this node's heartbeats have succeeded without a break. */
  private beatingSince: number | undefined;

  constructor(
    private readonly redis: Redis,
    nodeId: string,
    private readonly events: PresenceEvents,
    private readonly log: FastifyBaseLogger,
  ) {
    // Node ids repeat across hosts (node-6001 on each): the host keeps instances apart.
    this.host = `${nodeId}@${hostname()}`;
    this.instance = `${this.host}:${randomUUID().slice(0, 8)}`;
  }

  start(): void {
    const every = (ms: number, task: () => Promise<void>, what: string) => {
      const run = () => {
        task().catch((error: Error) => this.log.warn({ err: error.message }, `presence: ${what}`));
      };
      run();
      const timer = setInterval(run, ms);
      timer.unref();
      this.timers.push(timer);
    };
    every(PRESENCE_TIMING.beatMs, () => this.beat(), 'heartbeat failed');
    every(PRESENCE_TIMING.sweepMs, () => this.sweep(), 'sweep failed');
  }

  /** Stops the timers and takes this instance out: its remaining users start their grace. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await dropScript.run(
      this.redis,
      [key.instances, key.leaving],
      [this.instance, Date.now(), key.instancePrefix, key.userPrefix],
    );
  }

  /** Counts a new socket of the user; true when it is the user's first socket anywhere. */
  async connected(userID: string, username: string): Promise<boolean> {
    const entry = this.local.get(userID) ?? { sockets: 0, username };
    entry.sockets += 1;
    this.local.set(userID, entry);
    const first = await connectScript.run(this.redis, this.userKeys(userID), [
      this.instance,
      userID,
      entry.sockets,
    ]);
    if (first !== -1) return first === 1;
    // Re-registering announces the users it brings back, this one included.
    await this.register();
    return false;
  }

  async disconnected(userID: string): Promise<void> {
    const entry = this.local.get(userID);
    if (!entry) return;
    entry.sockets -= 1;
    if (entry.sockets <= 0) this.local.delete(userID);
    await disconnectScript.run(this.redis, this.userKeys(userID), [
      this.instance,
      userID,
      Math.max(entry.sockets, 0),
      Date.now(),
    ]);
  }

  private userKeys(userID: string): string[] {
    return [key.instances, key.instance(this.instance), key.userInstances(userID), key.leaving];
  }

  private async beat(): Promise<void> {
    let alive: unknown;
    try {
      alive = await beatScript.run(this.redis, [key.instances], [this.instance, Date.now()]);
    } catch (error) {
      this.beatingSince = undefined;
      throw error;
    }
    this.beatingSince ??= Date.now();
    if (alive !== 1) await this.register();
  }

  /**
   * Whether this node may judge others by their heartbeats. After Redis was away or full, every
   * node's heartbeats have lapsed alike; the first one back must not sweep the rest before they
   * have had the time to beat again.
   */
  private mayJudgeOthers(now: number): boolean {
    return this.beatingSince !== undefined && now - this.beatingSince >= PRESENCE_TIMING.staleMs;
  }

  /** Registers this instance with every local user; one run at a time. */
  private register(): Promise<string[]> {
    this.registering ??= this.registerNow().finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  private async registerNow(): Promise<string[]> {
    const pairs = [...this.local].flatMap(([userID, { sockets }]) => [userID, sockets]);
    const back = (await registerScript.run(
      this.redis,
      [key.instances, key.instance(this.instance), key.leaving],
      [this.instance, Date.now(), key.userPrefix, ...pairs],
    )) as string[];
    const users = back.flatMap((userID) => {
      const entry = this.local.get(userID);
      return entry ? [{ userID, username: entry.username }] : [];
    });
    if (users.length > 0) this.events.back(users);
    return back;
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    const gone = (await sweepScript.run(
      this.redis,
      [key.instances, key.leaving],
      [
        now,
        this.mayJudgeOthers(now) ? now - PRESENCE_TIMING.staleMs : 0,
        now - PRESENCE_TIMING.graceMs,
        this.instance,
        `${this.host}:`,
        key.instancePrefix,
        key.userPrefix,
        SWEEP_BATCH,
      ],
    )) as string[];
    if (gone.length > 0) this.events.gone(gone);
  }
}
