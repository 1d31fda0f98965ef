// Continuity when the stream loses or refuses events (ADAPTER=redis-streams).
//
// A client resumes from its last offset and is replayed the stream from there: nothing says
// whether the stream holds everything that was emitted. Two ways it may not:
// - a write refused (its connection to the stream's Redis is down, or Redis answers an error):
//   that event reached nobody;
// - a failover of the stream's master (a Redis Cluster replicates asynchronously): the entries
//   the master added last may not have reached the replica that replaces it. The nodes that had
//   read them delivered them, the others never will.
// So a node waits, after what it writes, for a replica to have it (WAIT, shared by the writes of
// a moment: waitForReplica; the emit API answers 202 only then). When a write is refused, or its
// WAIT fails, continuity is in doubt: the node refuses its later writes too, until the stream
// answers again and says whether the newest write no replica confirmed is still there. If
// anything was lost, the node adds a marker to the stream first. Every node that reads a marker
// closes its sockets' connections (recovery.ts), and a session whose replay holds one is not
// restored: every client is told (`socket.recovered === false`), and none gets this node's events
// from after the gap before the marker (another node's may come first, within about a second).
//
// A WAIT that no replica answers within its timeout does not hold the write up (a shard whose
// replica is lost would refuse everything): the write stays unconfirmed, and the next doubt
// checks it. The writes of a node that dies with the master are checked by nobody.
import type { Namespace } from 'socket.io';
import { MessageType } from 'socket.io-adapter';
import type { Stream } from './redis.ts';

/** The marker's event name; never sent to a client. */
export const CONTINUITY_LOST = 'kit:continuity-lost';

/** A stream entry id, `<ms>-<seq>`. */
type Offset = string;

/** Between two checks while the stream does not answer (a failover takes a few seconds). */
const RETRY_MS = 500;

/**
 * Whether the entry `offset` of `stream` is kept: `true` once a replica has it (or there is none
 * to wait for), `false` when the stream lost it, `undefined` when that could not be told within
 * `deadlineMs`.
 */
export async function settle(
  stream: Stream,
  offset: Offset,
  deadlineMs: number,
): Promise<boolean | undefined> {
  const deadline = Date.now() + deadlineMs;
  // Each call bounded by what is left: a command may wait for node-redis's own 5 s timeout.
  const within = <T>(p: Promise<T>) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((r) => {
      timer = setTimeout(r, Math.max(0, deadline - Date.now()), undefined);
    });
    return Promise.race([p.catch(() => undefined), late]).finally(() => clearTimeout(timer));
  };
  for (;;) {
    const replicas = await within(stream.replicated());
    if (replicas !== undefined) return true;
    // The WAIT failed (its connection to the shard's master broke) or ran out of time. Ask again
    // until the shard answers (its replica promoted, or the master back), then wait for its
    // replica again.
    for (;;) {
      if (Date.now() >= deadline) return undefined;
      await new Promise((r) => setTimeout(r, RETRY_MS));
      const held = await within(stream.holds(offset));
      if (held === false) return false;
      if (held === true) break;
    }
  }
}

/** Orders two stream entry ids (`<ms>-<seq>`). */
export function compareOffsets(a: Offset, b: Offset): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am === bm ? as - bs : am - bm;
}

const newer = (a: Offset | undefined, b: Offset) => (a && compareOffsets(a, b) > 0 ? a : b);

type Publish = (message: unknown) => Promise<Offset>;

/** What goes into the stream (the rest, requests and acknowledged broadcasts, is pub/sub). */
function streamed(message: unknown): boolean {
  const m = message as { type?: number; data?: { requestId?: unknown } };
  if (m.type === MessageType.BROADCAST) return m.data?.requestId === undefined;
  return (
    m.type === MessageType.SOCKETS_JOIN ||
    m.type === MessageType.SOCKETS_LEAVE ||
    m.type === MessageType.DISCONNECT_SOCKETS
  );
}

/**
 * A namespace's writes to its stream, watched. When one is refused (Redis away, its master lost)
 * or may have been lost (its WAIT failed), continuity is in doubt: later writes are refused too,
 * until the stream answers again and the doubt is settled; if anything was lost, a marker goes
 * into the stream first. Refusing rather than holding them keeps the node's memory bounded and
 * its events in order: none reaches a client ahead of the marker that tells it of a gap.
 */
export class Continuity {
  /** The newest write not yet handed to a WAIT. */
  private unsettled: Offset | undefined;
  private settling = false;
  /** The newest write no replica is known to have (its WAIT failed, or none answered it). */
  private unconfirmed: Offset | undefined;
  /** Set while continuity is in doubt; cleared once settled (and, if lost, announced). */
  private doubt: Promise<void> | undefined;
  /** A broadcast was refused, or a write found missing: a marker is owed. */
  private lost = false;
  /** Markers this namespace's reader has read (any node's). */
  private markersRead = 0;

  constructor(
    private readonly nsp: Namespace,
    private readonly raw: Publish,
    private readonly stream: Stream,
    private readonly onLost: () => void,
  ) {}

  /** Publishes as the adapter does, watched; stands in for its publishAndReturnOffset. */
  readonly publish: Publish = async (message) => {
    if (!streamed(message)) return this.raw(message);
    // Not into the client's queue either: a write queued while Redis is away goes out when it
    // answers, unless it waited longer than 5 s, and the later ones of a queue could then reach
    // clients ahead of the marker that tells them of the earlier ones' loss. Measured with
    // test/integration/recovery.test.ts (Redis away 7 s): 100 ticks refused, the next ones sent,
    // and every client saw the gap before the marker.
    if (this.doubt === undefined && !this.stream.writable()) this.inDoubt();
    // A refused broadcast is an event nobody gets; a refused room change still applies here
    // (recovery.ts) and delivers nothing.
    const broadcast = (message as { type?: number }).type === MessageType.BROADCAST;
    if (this.doubt !== undefined) {
      if (broadcast) this.lost = true;
      throw new Error('not published: continuity in doubt (Redis away, or a failover), retry');
    }
    let offset: Offset;
    try {
      offset = await this.raw(message);
    } catch (error) {
      if (broadcast) this.lost = true;
      this.inDoubt();
      throw error;
    }
    this.unsettled = offset;
    if (!this.settling) void this.settleAll();
    return offset;
  };

  /** The entry that marks a loss, as the streams adapter stores a broadcast to everyone. */
  private marker() {
    return {
      type: MessageType.BROADCAST,
      data: {
        packet: { type: 2, nsp: this.nsp.name, data: [CONTINUITY_LOST] },
        opts: { rooms: [], except: [], flags: {} },
      },
    };
  }

  /** Called when the node's reader reads a marker. */
  markerRead(): void {
    this.markersRead += 1;
  }

  /** One WAIT at a time for the newest write; each covers every write before it. */
  private async settleAll(): Promise<void> {
    this.settling = true;
    try {
      while (this.unsettled !== undefined) {
        const newest = this.unsettled;
        this.unsettled = undefined;
        const replicas = await this.stream.replicated().catch(() => -1);
        if (replicas >= 1) {
          if (this.unconfirmed && compareOffsets(this.unconfirmed, newest) <= 0) {
            this.unconfirmed = undefined;
          }
          continue;
        }
        // Not on a replica. Answered 0 (none within 500 ms, or none at all): nothing to do until
        // a failover says otherwise, when this is what is asked for. Failed: the master may be
        // lost with it.
        this.unconfirmed = newer(this.unconfirmed, newest);
        if (replicas < 0) this.inDoubt();
      }
    } finally {
      this.settling = false;
    }
  }

  private inDoubt(): void {
    this.doubt ??= this.settleDoubt().finally(() => {
      this.doubt = undefined;
    });
  }

  private async settleDoubt(): Promise<void> {
    const markersBefore = this.markersRead;
    let logged = false;
    for (;;) {
      await new Promise((r) => setTimeout(r, RETRY_MS));
      const checking = this.unconfirmed;
      // Asked of the shard that holds the stream now: its replica promoted, or its master back.
      // (Without a write to check, whether it answers at all.)
      const held = await this.stream.holds(checking ?? '0-0').catch(() => undefined);
      if (held === undefined) continue;
      // A later write's WAIT failed meanwhile: that one is the newest to check.
      if (this.unconfirmed !== checking) continue;
      if (checking !== undefined && !held) {
        this.lost = true;
        this.unconfirmed = undefined;
      }
      if (!this.lost) return;
      if (!logged) {
        logged = true;
        this.onLost();
      }
      // Every node in doubt after a failover comes here at about the same time. One marker tells
      // every client: a node that reads another's (added after its own doubt began) adds none.
      await new Promise((r) => setTimeout(r, Math.random() * RETRY_MS));
      if (this.markersRead !== markersBefore) {
        this.lost = false;
        return;
      }
      try {
        await this.raw(this.marker());
        this.lost = false;
        return;
      } catch {
        // Asked again, and the marker tried again, until the stream takes it.
      }
    }
  }
}

/** Whether a stream message is a continuity marker (any node's). */
export function isMarker(message: unknown): boolean {
  const m = message as { type?: number; data?: { packet?: { data?: unknown[] } } };
  return m.type === MessageType.BROADCAST && m.data?.packet?.data?.[0] === CONTINUITY_LOST;
}

/** Whether a replay (a restored session's missed packets) crosses a loss. */
export function crossesLoss(missedPackets: readonly unknown[][]): boolean {
  return missedPackets.some((packet) => packet[0] === CONTINUITY_LOST);
}
