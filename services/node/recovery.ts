// Connection state recovery without a seam (ADAPTER=redis-streams).
//
// A client that comes back to a node gets what it missed from the stream: the adapter reads the
// stream from the client's last offset to its end (XRANGE) and Socket.IO sends those events before
// the socket is in its rooms. Meanwhile the node's own reader of the stream goes on delivering
// live events, and two races follow (measured with test/integration/recovery.test.ts through a
// rolling restart: 19 gaps or repeats among 77 recoveries):
// - an event added after the XRANGE and delivered before the socket is in its rooms is lost;
// - an event in the XRANGE that the node's reader delivers only after the socket is in its rooms
//   arrives twice.
// So while a session is restored every event it could match is kept aside, and sent once the
// socket is connected if it came after the replay; and until the node's reader has passed the
// replay's last offset, events up to it skip the socket.
//
// And a third: socket.io-adapter delivers a node's own broadcasts to its sockets as soon as XADD
// answers, ahead of other nodes' events that precede them in the stream. A client then receives
// offsets out of order and resumes from the last one it got, not the latest: it is sent again
// what it had, or misses what was still on its way. So here a node's own broadcasts reach its
// sockets the way other nodes' do, when its reader reads them back: one order, the stream's.
// The price: a local delivery waits for that read (a millisecond or two on a LAN).
import type { Namespace, Server, Socket } from 'socket.io';
import { Adapter, MessageType } from 'socket.io-adapter';

/** A stream entry id, `<ms>-<seq>`. */
type Offset = string;

interface Packet {
  type: number;
  id?: number;
  data: unknown[];
}
interface BroadcastOptions {
  rooms: Set<string>;
  except: Set<string>;
  flags?: { volatile?: boolean };
}
interface Session {
  sid: string;
  pid: string;
  rooms: string[];
  missedPackets: unknown[][];
}
/** What the streams adapter (socket.io-adapter's ClusterAdapter) offers to hook into. */
interface StreamsAdapter {
  readonly uid: string;
  broadcast(packet: Packet, opts: BroadcastOptions): unknown;
  publishAndReturnOffset(message: unknown): Promise<Offset>;
  restoreSession(pid: string, offset: Offset): Promise<Session>;
  addOffsetIfNecessary(packet: Packet, opts: BroadcastOptions, offset: Offset): void;
  onMessage(message: unknown, offset?: Offset): unknown;
}

/** A session being restored (events kept aside), or restored (events up to `until` skip it). */
interface Restoring {
  phase: 'restoring' | 'restored';
  session?: Session;
  /** The last offset the replay holds. */
  until: Offset;
  kept: { data: unknown[]; offset: Offset; rooms: string[]; except: string[] }[];
  sid?: string;
  timer: NodeJS.Timeout;
}

/** socket.io-parser's EVENT packet type. */
const EVENT = 2;
/** Socket.packet(), which Socket.IO itself uses to send a recovered socket what it missed. */
type Writable = { packet(packet: { type: number; data: unknown[] }): void };

/** A restore whose socket never connects (the client left again) is forgotten after this. */
const FORGET_AFTER_MS = 10_000;

export function compareOffsets(a: Offset, b: Offset): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am === bm ? as - bs : am - bm;
}

function matches(rooms: readonly string[] | Set<string>, opts: BroadcastOptions): boolean {
  const list = [...rooms];
  if (list.some((room) => opts.except.has(room))) return false;
  return opts.rooms.size === 0 || list.some((room) => opts.rooms.has(room));
}

/** Hooks every namespace of `io` (its adapter must be the streams adapter). */
export function seamlessRecovery(io: Server): void {
  hook(io.of('/'));
  io.on('new_namespace', hook);
}

function hook(nsp: Namespace): void {
  const adapter = nsp.adapter as unknown as StreamsAdapter;
  const byPid = new Map<string, Restoring>();
  /** The last stream entry the node's reader handed over. */
  let polled: Offset = '0-0';

  const restore = adapter.restoreSession.bind(adapter);
  adapter.restoreSession = async (pid, offset) => {
    const entry: Restoring = {
      phase: 'restoring',
      until: offset,
      kept: [],
      timer: setTimeout(() => byPid.delete(pid), FORGET_AFTER_MS),
    };
    entry.timer.unref();
    byPid.set(pid, entry);
    try {
      const session = await restore(pid, offset);
      entry.session = session;
      const last = session.missedPackets.at(-1)?.at(-1);
      if (typeof last === 'string') entry.until = last;
      return session;
    } catch (error) {
      clearTimeout(entry.timer);
      byPid.delete(pid);
      throw error;
    }
  };

  /** Delivery to this node's sockets (what ClusterAdapter calls `super.broadcast`). */
  const deliver = (packet: Packet, opts: BroadcastOptions) =>
    Adapter.prototype.broadcast.call(adapter as never, packet as never, opts as never);

  adapter.broadcast = async (packet, opts) => {
    if ((opts.flags as { local?: boolean } | undefined)?.local) return deliver(packet, opts);
    try {
      await adapter.publishAndReturnOffset({
        type: MessageType.BROADCAST,
        data: {
          packet,
          opts: { rooms: [...opts.rooms], except: [...opts.except], flags: opts.flags },
        },
      });
    } catch {
      // Redis refused it: this node's sockets still get it, without an offset (as before).
      deliver(packet, opts);
    }
  };

  const onMessage = adapter.onMessage.bind(adapter);
  adapter.onMessage = (message, offset) => {
    if (offset !== undefined) polled = offset;
    const own = message as {
      uid?: string;
      type?: number;
      data?: { packet: Packet; requestId?: string; opts: { rooms: string[]; except: string[] } };
    };
    if (
      offset !== undefined &&
      own.uid === adapter.uid &&
      own.type === MessageType.BROADCAST &&
      own.data?.requestId === undefined &&
      own.data
    ) {
      const opts: BroadcastOptions = {
        ...own.data.opts,
        rooms: new Set(own.data.opts.rooms),
        except: new Set(own.data.opts.except),
      };
      adapter.addOffsetIfNecessary(own.data.packet, opts, offset);
      deliver(own.data.packet, opts);
      return;
    }
    return onMessage(message, offset);
  };

  // Called for every broadcast, local or from another node, with its offset, just before it is
  // delivered to this node's sockets.
  const addOffset = adapter.addOffsetIfNecessary.bind(adapter);
  adapter.addOffsetIfNecessary = (packet, opts, offset) => {
    addOffset(packet, opts, offset);
    if (byPid.size === 0) return;
    const stored = packet.type === 2 && packet.id === undefined && !opts.flags?.volatile;
    if (!stored) return;
    for (const [pid, entry] of byPid) {
      if (entry.phase === 'restoring') {
        // Its rooms are not known yet: every stored event is kept, and sorted out on connect.
        entry.kept.push({
          data: [...packet.data],
          offset,
          rooms: [...opts.rooms],
          except: [...opts.except],
        });
        continue;
      }
      if (compareOffsets(offset, entry.until) <= 0) {
        // Replayed or sent already: not again.
        if (entry.sid) opts.except.add(entry.sid);
      } else if (compareOffsets(polled, entry.until) > 0) {
        // The reader is past the replay: nothing it reads from now on can have been replayed.
        clearTimeout(entry.timer);
        byPid.delete(pid);
      }
    }
  };

  // First of the namespace's connection handlers (registered before the application's).
  nsp.on('connection', (socket: Socket) => {
    if (!socket.recovered) return;
    const entry = byPid.get((socket as unknown as { pid: string }).pid);
    if (entry?.phase !== 'restoring') return;
    entry.phase = 'restored';
    entry.sid = socket.id;
    for (const { data, offset, rooms, except } of entry.kept) {
      const opts = { rooms: new Set(rooms), except: new Set(except) };
      if (compareOffsets(offset, entry.until) > 0 && matches(socket.rooms, opts)) {
        // Written as Socket.IO writes the replay. Not socket.emit(): with recovery on, that is
        // a broadcast to the socket's own room, added to the stream again and read back later,
        // out of order.
        (socket as unknown as Writable).packet({ type: EVENT, data });
        entry.until = offset;
      }
    }
    entry.kept.length = 0;
  });
}
