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
// Its room changes and disconnections (`socketsJoin`, `socketsLeave`, `disconnectSockets`) too,
// so that they keep their place among its broadcasts. The price: a local delivery waits for that
// read (a millisecond or two on a LAN), and a broadcast Redis refuses reaches nobody (the emit
// API then answers 503).
//
// A failover of the stream's Redis master can lose its last entries: continuity.ts tells every
// client when that happens, here (a marker in the stream closes every connection, and a replay
// that crosses it is not restored).
//
// What this holds is bounded: a restore keeps at most KEPT_MAX events (beyond, its client starts
// afresh and is told), and is forgotten when its socket does not connect or settle in time.
import type { FastifyBaseLogger } from 'fastify';
import type { Namespace, Server, Socket } from 'socket.io';
import { Adapter, MessageType } from 'socket.io-adapter';
import { Continuity, compareOffsets, crossesLoss, isMarker } from './continuity.ts';
import type { StreamOf } from './redis.ts';

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
  /** The last offset the replay holds (then: the last sent to the socket). */
  until: Offset;
  /** Known once the session is read: only events for these rooms are kept from then on. */
  rooms?: Set<string>;
  kept: { data: unknown[]; offset: Offset; rooms: string[]; except: string[] }[];
  /** More events came while restoring than KEPT_MAX: the socket is told to start afresh. */
  overflow: boolean;
  /** Continuity was lost while restoring: the socket's connection is closed, as every other's. */
  lost?: boolean;
  sid?: string;
  timer?: NodeJS.Timeout;
}

/** Longest a restore may take (its XRANGE reads the stream from the client's offset). */
const RESTORE_MS = 10_000;
/** A restored session's socket connects at once, unless its connection closed meanwhile. */
const CONNECT_MS = 2_000;
/** Longest a restored socket waits for the node's reader to pass its replay. */
const SETTLE_MS = 10_000;
/** Events kept aside per restore at most (about a second of a busy namespace's broadcasts). */
const KEPT_MAX = 5_000;

/** socket.io-parser's EVENT packet type. */
const EVENT = 2;
/** Socket.packet(), which Socket.IO itself uses to send a recovered socket what it missed. */
type Writable = { packet(packet: { type: number; data: unknown[] }): void };

function matches(rooms: readonly string[] | Set<string>, opts: BroadcastOptions): boolean {
  const list = [...rooms];
  if (list.some((room) => opts.except.has(room))) return false;
  return opts.rooms.size === 0 || list.some((room) => opts.rooms.has(room));
}

/** Hooks every namespace of `io` (its adapter must be the streams adapter). */
export function seamlessRecovery(io: Server, streams: StreamOf, log: FastifyBaseLogger): void {
  const withStore = (nsp: Namespace) => hook(nsp, streams, log);
  withStore(io.of('/'));
  io.on('new_namespace', withStore);
}

function hook(nsp: Namespace, streams: StreamOf, log: FastifyBaseLogger): void {
  const adapter = nsp.adapter as unknown as StreamsAdapter;
  const byPid = new Map<string, Restoring>();
  /** The last stream entry the node's reader handed over. */
  let polled: Offset = '0-0';

  const forget = (pid: string, entry: Restoring) => {
    clearTimeout(entry.timer);
    if (byPid.get(pid) === entry) byPid.delete(pid);
  };
  const arm = (pid: string, entry: Restoring, ms: number) => {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => forget(pid, entry), ms);
    entry.timer.unref();
  };

  const restore = adapter.restoreSession.bind(adapter);
  adapter.restoreSession = async (pid, offset) => {
    const earlier = byPid.get(pid);
    // A second CONNECT for a session still being restored: only one can win (the session is
    // read and deleted at once); the first keeps the bookkeeping.
    if (earlier?.phase === 'restoring') return restore(pid, offset);
    if (earlier) forget(pid, earlier);
    const entry: Restoring = { phase: 'restoring', until: offset, kept: [], overflow: false };
    byPid.set(pid, entry);
    arm(pid, entry, RESTORE_MS);
    try {
      const session = await restore(pid, offset);
      // Its session is read and gone: the client starts afresh, told.
      if (crossesLoss(session.missedPackets)) throw new Error('continuity lost since its offset');
      const last = session.missedPackets.at(-1)?.at(-1);
      if (typeof last === 'string') entry.until = last;
      entry.rooms = new Set(session.rooms);
      const rooms = entry.rooms;
      entry.kept = entry.kept.filter((k) => matches(rooms, toOptions(k)));
      arm(pid, entry, CONNECT_MS);
      return session;
    } catch (error) {
      forget(pid, entry);
      throw error;
    }
  };

  /** What ClusterAdapter does with `super.…`: act on this node's sockets only. */
  const local = Adapter.prototype;
  const deliver = (packet: Packet, opts: BroadcastOptions) =>
    local.broadcast.call(adapter as never, packet as never, opts as never);

  /**
   * Publishes to the stream and acts on this node's sockets only when the node's reader reads it
   * back (below). When Redis refuses it, nothing is delivered, here or anywhere: the emit API
   * answers 503 and its caller retries; delivering here alone would reach these sockets twice
   * after that retry, and without an offset.
   */
  const publish = (type: number, data: object) => adapter.publishAndReturnOffset({ type, data });
  const continuity = new Continuity(
    nsp,
    adapter.publishAndReturnOffset.bind(adapter),
    streams(nsp.name),
    () =>
      log.error(
        { namespace: nsp.name },
        'the stream lost or refused events of this node (Redis away, or a failover): every client is told',
      ),
  );
  adapter.publishAndReturnOffset = continuity.publish;
  /** A marker read: every socket of this node starts afresh, told (see continuity.ts). */
  const loseContinuity = () => {
    for (const entry of byPid.values()) if (entry.phase === 'restoring') entry.lost = true;
    for (const socket of nsp.sockets.values()) socket.conn.close();
  };
  const encode = (opts: BroadcastOptions) => ({
    rooms: [...opts.rooms],
    except: [...opts.except],
    flags: opts.flags,
  });
  const isLocal = (opts: BroadcastOptions) =>
    (opts.flags as { local?: boolean } | undefined)?.local === true;

  adapter.broadcast = async (packet, opts) => {
    if (isLocal(opts)) return deliver(packet, opts);
    await publish(MessageType.BROADCAST, { packet, opts: encode(opts) });
  };
  // Room changes and disconnections go the same way, so that they keep their place among this
  // node's broadcasts (`io.to(r).emit(…)` then `io.in(r).disconnectSockets()`: the event first).
  // Refused by Redis, they still apply here: they change state, they deliver nothing.
  const roomOp =
    (type: number, apply: (opts: BroadcastOptions, arg: unknown) => unknown) =>
    async (opts: BroadcastOptions, arg: unknown) => {
      if (isLocal(opts)) return apply(opts, arg);
      const key = type === MessageType.DISCONNECT_SOCKETS ? 'close' : 'rooms';
      await publish(type, { opts: encode(opts), [key]: arg }).catch(() => apply(opts, arg));
    };
  const join = (opts: BroadcastOptions, rooms: unknown) =>
    local.addSockets.call(adapter as never, opts as never, rooms as never);
  const leave = (opts: BroadcastOptions, rooms: unknown) =>
    local.delSockets.call(adapter as never, opts as never, rooms as never);
  const disconnect = (opts: BroadcastOptions, close: unknown) =>
    local.disconnectSockets.call(adapter as never, opts as never, close as never);
  Object.assign(adapter, {
    addSockets: roomOp(MessageType.SOCKETS_JOIN, join),
    delSockets: roomOp(MessageType.SOCKETS_LEAVE, leave),
    disconnectSockets: roomOp(MessageType.DISCONNECT_SOCKETS, disconnect),
  });

  const onMessage = adapter.onMessage.bind(adapter);
  adapter.onMessage = (message, offset) => {
    if (offset !== undefined) polled = offset;
    if (isMarker(message)) {
      continuity.markerRead();
      return loseContinuity();
    }
    const own = message as {
      uid?: string;
      type?: number;
      data?: {
        packet: Packet;
        requestId?: string;
        opts: { rooms: string[]; except: string[] };
        rooms?: string[];
        close?: boolean;
      };
    };
    if (offset === undefined || own.uid !== adapter.uid || !own.data)
      return onMessage(message, offset);
    const opts: BroadcastOptions = {
      ...own.data.opts,
      rooms: new Set(own.data.opts.rooms),
      except: new Set(own.data.opts.except),
    };
    switch (own.type) {
      case MessageType.BROADCAST:
        if (own.data.requestId !== undefined) return onMessage(message, offset);
        adapter.addOffsetIfNecessary(own.data.packet, opts, offset);
        return deliver(own.data.packet, opts);
      case MessageType.SOCKETS_JOIN:
        return join(opts, own.data.rooms);
      case MessageType.SOCKETS_LEAVE:
        return leave(opts, own.data.rooms);
      case MessageType.DISCONNECT_SOCKETS:
        return disconnect(opts, own.data.close);
      default:
        return onMessage(message, offset);
    }
  };

  // Called for every broadcast, this node's or another's, with its offset, just before it is
  // delivered to this node's sockets.
  const addOffset = adapter.addOffsetIfNecessary.bind(adapter);
  adapter.addOffsetIfNecessary = (packet, opts, offset) => {
    addOffset(packet, opts, offset);
    // Every event, volatile and acknowledged ones too: the replay holds them all.
    if (byPid.size === 0 || packet.type !== EVENT) return;
    for (const [pid, entry] of byPid) {
      if (entry.phase === 'restoring') {
        if (entry.rooms && !matches(entry.rooms, opts)) continue;
        if (entry.kept.length >= KEPT_MAX) entry.overflow = true;
        else {
          entry.kept.push({
            data: [...packet.data],
            offset,
            rooms: [...opts.rooms],
            except: [...opts.except],
          });
        }
      } else if (compareOffsets(offset, entry.until) <= 0) {
        // Replayed or sent already: not again.
        if (entry.sid) opts.except.add(entry.sid);
      } else if (compareOffsets(polled, entry.until) > 0) {
        // The reader is past the replay: nothing it reads from now on can have been replayed.
        forget(pid, entry);
      }
    }
  };

  // First of the namespace's connection handlers (registered before the application's).
  nsp.on('connection', (socket: Socket) => {
    if (!socket.recovered) return;
    const pid = (socket as unknown as { pid: string }).pid;
    const entry = byPid.get(pid);
    if (entry?.phase !== 'restoring') return;
    if (entry.lost) {
      // Restored from a replay read before the marker: closed as the others were, its next
      // replay holds the marker.
      forget(pid, entry);
      socket.conn.close();
      return;
    }
    if (entry.overflow) {
      // Too much came meanwhile to hold: rather than a gap, the client starts afresh and is
      // told so (its session is gone: recovered === false).
      forget(pid, entry);
      socket.disconnect(true);
      return;
    }
    entry.phase = 'restored';
    entry.sid = socket.id;
    for (const kept of entry.kept) {
      if (compareOffsets(kept.offset, entry.until) > 0 && matches(socket.rooms, toOptions(kept))) {
        // Written as Socket.IO writes the replay. Not socket.emit(): with recovery on, that is
        // a broadcast to the socket's own room, added to the stream again and read back later,
        // out of order.
        (socket as unknown as Writable).packet({ type: EVENT, data: kept.data });
        entry.until = kept.offset;
      }
    }
    entry.kept = [];
    arm(pid, entry, SETTLE_MS);
  });
}

function toOptions(kept: { rooms: string[]; except: string[] }): BroadcastOptions {
  return { rooms: new Set(kept.rooms), except: new Set(kept.except) };
}
