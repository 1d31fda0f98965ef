// One load-generator process, driven by the bench over IPC. It opens Socket.IO or raw WebSocket
// connections from many source addresses (127.N.M.1, so nginx's ip_hash spreads them), joins a
// room, publishes at a set rate, and records the latency of every delivery from the timestamp
// inside the message. Several of these run at once: one process would be the bottleneck, and
// the open-files limit (20,000) caps each.

import { Histogram } from './histogram.ts';
import { integerAt, leanConnect } from './lean-ws.ts';

export type Kind = 'socketio' | 'ws';

export type Command =
  | {
      type: 'open';
      url: string;
      kind: Kind;
      addresses: string[];
      subscribers: number;
      publishers: number;
      room: string;
      /** Rooms the subscribers are dealt over (`room-0` …), one when unset; the publishers
       * publish to each in turn. */
      rooms?: number;
      /** This generator's first subscriber among all the generators', so that the rooms are
       * dealt evenly over the whole crowd. */
      offset?: number;
    }
  | { type: 'run'; rate: number; durationMs: number; payloadBytes: number; settleMs: number }
  | {
      type: 'hold';
      url: string;
      kind: Kind;
      addresses: string[];
      count: number;
      concurrency: number;
    }
  | { type: 'close' };

export type Reply =
  | {
      type: 'opened';
      opened: number;
      failed: number;
      retried?: number;
      ms: number;
      firstError?: string;
    }
  | { type: 'ran'; sent: number; received: number; buckets: number[]; ms: number }
  | { type: 'closed' }
  | { type: 'error'; message: string };

const now = () => Number(process.hrtime.bigint() / 1000n);

/** A connection the generator can publish on and receive from, whatever the protocol. */
interface Conn {
  join(room: string): Promise<void>;
  publish(room: string, t: number, pad: string): void;
  close(): void;
}

/** A handshake still unanswered after this long is given up (and retried by openMany). */
const OPEN_TIMEOUT_MS = 10_000;

const T = Buffer.from('"t":');

/** The timestamp in a message (`…"t":<µs>,…`), or undefined when it has none. */
function timestampIn(bytes: Buffer, start: number, end: number): number | undefined {
  const at = bytes.indexOf(T, start);
  return at >= 0 && at < end ? integerAt(bytes, at + T.length, end) : undefined;
}

/** What a connection does for its protocol, to the server's frames and in its own. */
interface Protocol {
  path: string;
  /** The upgrade was answered: ready at once, or after a first exchange. */
  opened(link: Link): void;
  /** A text frame from the server, as bytes `[start, end)`. */
  read(bytes: Buffer, start: number, end: number, link: Link): void;
  join(room: string): string;
  publish(room: string, t: number, pad: string): string;
}

interface Link {
  send(text: string): void;
  ready(): void;
  joined(): void;
  refused(why: string): void;
}

/** Opens a lean WebSocket (lean-ws.ts) speaking `protocol`; resolves once it is ready. */
function openLean(url: string, address: string, protocol: Protocol): Promise<Conn> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let joined: (() => void) | undefined;
    const fail = (error: Error) => {
      clearTimeout(timer);
      if (!settled) {
        settled = true;
        reject(error);
      }
      socket.close();
    };
    const timer = setTimeout(
      () => fail(new Error(`no handshake in ${OPEN_TIMEOUT_MS / 1000} s`)),
      OPEN_TIMEOUT_MS,
    );
    const conn: Conn = {
      join: (room) =>
        new Promise<void>((done) => {
          joined = done;
          socket.send(protocol.join(room));
        }),
      publish: (room, t, pad) => socket.send(protocol.publish(room, t, pad)),
      close: () => socket.close(),
    };
    const link: Link = {
      send: (text) => socket.send(text),
      ready: () => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        resolve(conn);
      },
      joined: () => joined?.(),
      refused: (why) => fail(new Error(`connect refused: ${why}`)),
    };
    const socket = leanConnect(`${url}${protocol.path}`, address, {
      onOpen: () => protocol.opened(link),
      onText: (bytes, start, end) => protocol.read(bytes, start, end, link),
      onClose: (error) => {
        if (!settled) fail(error ?? new Error('closed before the handshake'));
      },
    });
  });
}

const ZERO = 48;
const TWO = 50;
const THREE = 51;
const FOUR = 52;

/**
 * A Socket.IO client at the protocol level (Engine.IO 4 over WebSocket): connect, join with an
 * acknowledgement, answer pings, publish, and read the timestamp out of each `msg` without
 * decoding it. A full socket.io-client decodes every packet and would make the generators the
 * bottleneck; this costs what the raw WebSocket client costs, so every variant meets the same
 * load.
 */
const socketIo = (onMessage: (t: number) => void): Protocol => ({
  path: '/socket.io/?EIO=4&transport=websocket',
  opened: () => undefined,
  read(bytes, start, end, link) {
    const first = bytes[start];
    if (first === ZERO) return link.send('40'); // Engine.IO open → Socket.IO connect to "/"
    if (first === TWO && end - start === 1) return link.send('3'); // ping
    if (first !== FOUR) return;
    const second = bytes[start + 1];
    if (second === TWO) {
      const t = timestampIn(bytes, start, end);
      if (t !== undefined) onMessage(t);
    } else if (second === THREE && bytes[start + 2] === ZERO) link.joined();
    else if (second === ZERO) link.ready();
    else if (second === FOUR) link.refused(bytes.toString('utf8', start + 2, end));
  },
  join: (room) => `420${JSON.stringify(['join', room])}`,
  publish: (room, t, pad) => `42["pub",{"room":${JSON.stringify(room)},"t":${t},"pad":"${pad}"}]`,
});

const JOINED = Buffer.from('{"joined":true}');

/** The raw WebSocket server's protocol (servers/raw-ws.ts): JSON, `{"joined":true}` on join. */
const rawWs = (onMessage: (t: number) => void): Protocol => ({
  path: '',
  opened: (link) => link.ready(),
  read(bytes, start, end, link) {
    if (end - start === JOINED.length && bytes.compare(JOINED, 0, JOINED.length, start, end) === 0)
      return link.joined();
    // {"pub":"room","t":123,…}: the timestamp sits after the room, cheap to pick out.
    const t = timestampIn(bytes, start, end);
    if (t !== undefined) onMessage(t);
  },
  join: (room) => JSON.stringify({ join: room }),
  publish: (room, t, pad) => JSON.stringify({ pub: room, t, pad }),
});

const subscribers: Conn[] = [];
const publishers: Conn[] = [];
/** The rooms publications go to, in turn. */
let rooms = ['bench'];
let histogram = new Histogram();
let received = 0;

function record(t: number): void {
  received += 1;
  histogram.record(now() - t);
}

/** Opens `count` connections, `concurrency` at a time, cycling over the addresses. */
async function openMany(
  count: number,
  concurrency: number,
  open: (address: string) => Promise<Conn>,
  addresses: string[],
  attempts = 1,
): Promise<{ conns: Conn[]; failed: number; retried: number; firstError?: string }> {
  const conns: Conn[] = [];
  let failed = 0;
  let retried = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          conns.push(await open(addresses[i % addresses.length] as string));
          break;
        } catch (error) {
          firstError ??= (error as Error).message;
          if (attempt >= attempts) {
            failed += 1;
            break;
          }
          retried += 1;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { conns, failed, retried, firstError };
}

function opener(kind: Kind, url: string): (address: string) => Promise<Conn> {
  const target = url.replace(/^http/, 'ws');
  const protocol = kind === 'ws' ? rawWs(record) : socketIo(record);
  return (address) => openLean(target, address, protocol);
}

async function handle(command: Command): Promise<Reply> {
  switch (command.type) {
    case 'open': {
      const count = command.rooms ?? 1;
      const roomOf = (i: number) =>
        count === 1 ? command.room : `${command.room}-${((command.offset ?? 0) + i) % count}`;
      rooms = Array.from({ length: Math.min(count, command.subscribers) }, (_, i) => roomOf(i));
      const began = Date.now();
      const open = opener(command.kind, command.url);
      // The room's members must all be there: a connection that fails is tried twice more (seen:
      // @socket.io/sticky now and then leaves a WebSocket handshake unanswered).
      const subs = await openMany(command.subscribers, 50, open, command.addresses, 3);
      const pubs = await openMany(command.publishers, 10, open, command.addresses, 3);
      subscribers.push(...subs.conns);
      publishers.push(...pubs.conns);
      // Joining: Socket.IO acknowledges, the raw server answers; both are awaited so the room is
      // complete before anything is published.
      await Promise.all(subs.conns.map((c, i) => c.join(roomOf(i))));
      return {
        type: 'opened',
        opened: subs.conns.length + pubs.conns.length,
        failed: subs.failed + pubs.failed,
        retried: subs.retried + pubs.retried,
        ms: Date.now() - began,
        firstError: subs.firstError ?? pubs.firstError,
      };
    }
    case 'run': {
      histogram = new Histogram();
      received = 0;
      const pad = 'x'.repeat(command.payloadBytes);
      const began = Date.now();
      let sent = 0;
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          const elapsed = Date.now() - began;
          const due = Math.floor((command.rate * Math.min(elapsed, command.durationMs)) / 1000);
          while (sent < due && publishers.length > 0) {
            const to = rooms[sent % rooms.length] as string;
            (publishers[sent % publishers.length] as Conn).publish(to, now(), pad);
            sent += 1;
          }
          if (elapsed >= command.durationMs) {
            clearInterval(tick);
            resolve();
          }
        }, 5);
      });
      await new Promise((r) => setTimeout(r, command.settleMs));
      return { type: 'ran', sent, received, buckets: histogram.toArray(), ms: Date.now() - began };
    }
    case 'hold': {
      const began = Date.now();
      const result = await openMany(
        command.count,
        command.concurrency,
        opener(command.kind, command.url),
        command.addresses,
      );
      subscribers.push(...result.conns);
      return {
        type: 'opened',
        opened: result.conns.length,
        failed: result.failed,
        ms: Date.now() - began,
        firstError: result.firstError,
      };
    }
    case 'close': {
      for (const c of [...subscribers, ...publishers]) c.close();
      subscribers.length = 0;
      publishers.length = 0;
      return { type: 'closed' };
    }
  }
}

process.on('message', (command: Command) => {
  handle(command).then(
    (reply) => process.send?.(reply),
    (error: Error) => process.send?.({ type: 'error', message: error.message } satisfies Reply),
  );
});

// The bench gone (interrupted, or crashed), nobody waits for a reply: leave without one, where a
// reply sent into the closed channel would end this process with an unhandled error instead.
process.on('disconnect', () => process.exit(0));
