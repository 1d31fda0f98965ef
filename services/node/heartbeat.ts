// Heartbeats in step. Engine.IO pings each client on a timer of its own, pingInterval after the
// client's last pong, so a node's clients are pinged one at a time, each ping waking the node,
// an nginx worker and the client, and its pong nginx and the node again. With the kit's 2 s
// heartbeat that is most of what idle connections cost.
//
// Here a node's pings go out together, on a tick it shares with all its clients: each client is
// pinged at the first tick at least pingInterval after its last pong (at most TICK_MS later
// than Engine.IO would ping it, and whatever the event loop lags), and its pong is awaited as
// Engine.IO awaits it (pingTimeout from the ping). A client still notices a silent node
// pingInterval + pingTimeout after its last ping, and a node a silent client pingTimeout after
// its ping: the tick changes when a ping is written, nothing a client or a node decides on.
//
// Engine.IO keeps the timer private: its socket's `schedulePing` makes it, a pong calls its
// `refresh()`, `onClose` calls `clearTimeout` on it. The kit gives the socket a beat in place of
// the timer, with a `refresh()` that puts it back on the wheel. `clearTimeout` ignores anything
// that is not a timer, so `onClose` also lets the beat go of its socket (else the wheel would
// hold a closed client's socket, request and transport until its tick), and the beat does
// nothing when its tick comes. An Engine.IO without those members keeps its own timers
// (test/unit/heartbeat.test.ts fails if that ever happens).
import { createRequire } from 'node:module';
import type { Server } from 'socket.io';

/** How far apart a node's ping ticks are: the most a ping is later than Engine.IO's. */
export const TICK_MS = 50;

interface EngineSocket {
  server: object;
  hasRefreshedPingTimeout: boolean;
  pingIntervalTimer: unknown;
  sendPacket(type: 'ping'): void;
  resetPingTimeout(): void;
  schedulePing(): void;
  onClose(...args: unknown[]): void;
}

/** A client's place on the wheel, which Engine.IO holds where it would hold its ping timer. */
class Beat {
  /** The tick it waits for, or -1 while its ping waits for a pong. */
  slot = -1;

  constructor(
    /** Until the socket closes. */
    public socket: EngineSocket | undefined,
    private readonly wheel: Wheel,
  ) {}

  /** Engine.IO's call on a pong: the next ping a pingInterval on. A pong the client sent
   * unasked leaves a waiting beat where it is, so a client cannot move its ping away. */
  refresh(): this {
    if (this.slot < 0) this.wheel.add(this);
    return this;
  }

  /** What Engine.IO's ping timer does when it fires. */
  ping(): void {
    this.slot = -1;
    const socket = this.socket;
    if (!socket) return;
    socket.hasRefreshedPingTimeout = false;
    socket.sendPacket('ping');
    socket.resetPingTimeout();
  }
}

/** The beats of one server's clients, in buckets by the tick each waits for. */
class Wheel {
  private readonly buckets = new Map<number, Beat[]>();
  private timer: NodeJS.Timeout | undefined;
  /** Ticks turned so far. Counted, not read off a clock: a tick is never sooner than TICK_MS
   * after the one before, so neither a wall clock set back nor a lagging loop makes a ping
   * early, and the ticks are where the pings go out. */
  private ticks = 0;
  /** Ticks from an add to its ping: the next tick comes within TICK_MS of the add, so one more
   * than pingInterval's worth, which puts the ping within TICK_MS after pingInterval. */
  private readonly span: number;

  constructor(intervalMs: number) {
    this.span = Math.ceil(intervalMs / TICK_MS) + 1;
  }

  add(beat: Beat): void {
    // A wheel that stopped starts a fresh interval: its first tick is a whole TICK_MS away.
    const slot = this.ticks + this.span - (this.timer ? 0 : 1);
    beat.slot = slot;
    const bucket = this.buckets.get(slot);
    if (bucket) bucket.push(beat);
    else this.buckets.set(slot, [beat]);
    this.timer ??= setInterval(() => this.turn(), TICK_MS).unref();
  }

  private turn(): void {
    const now = ++this.ticks;
    // Slots only grow (a fixed span on a counter that only grows), and a Map keeps insertion
    // order.
    for (const [slot, bucket] of this.buckets) {
      if (slot > now) break;
      this.buckets.delete(slot);
      for (const beat of bucket) {
        try {
          beat.ping();
        } catch (error) {
          // As Engine.IO's own timer would: uncaught; the other clients are still pinged.
          process.nextTick(() => {
            throw error;
          });
        }
      }
    }
    if (this.buckets.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

const wheels = new WeakMap<object, Wheel>();
const IN_STEP = Symbol('kit.heartbeatsInStep');

/** Pings `io`'s clients on a shared tick; other servers in the process keep Engine.IO's timers. */
export function pingInStep(io: Server): void {
  const socket = engineSocket()?.prototype as (EngineSocket & Record<symbol, boolean>) | undefined;
  const own = socket?.schedulePing;
  const close = socket?.onClose;
  if (
    !socket ||
    typeof own !== 'function' ||
    typeof close !== 'function' ||
    typeof socket.resetPingTimeout !== 'function' ||
    typeof socket.sendPacket !== 'function'
  )
    return;
  const engine = io.engine as unknown as { opts: { pingInterval: number } };
  if (!wheels.has(engine)) wheels.set(engine, new Wheel(engine.opts.pingInterval));
  if (socket[IN_STEP]) return;
  socket[IN_STEP] = true;
  socket.schedulePing = function (this: EngineSocket) {
    const wheel = wheels.get(this.server);
    if (!wheel) return own.call(this);
    const beat = new Beat(this, wheel);
    this.pingIntervalTimer = beat;
    wheel.add(beat);
  };
  socket.onClose = function (this: EngineSocket, ...args: unknown[]) {
    if (this.pingIntervalTimer instanceof Beat) this.pingIntervalTimer.socket = undefined;
    close.apply(this, args);
  };
}

/** engine.io's Socket class, as the socket.io in use loads it. */
function engineSocket(): { prototype: EngineSocket } | undefined {
  try {
    const fromSocketIo = createRequire(createRequire(import.meta.url).resolve('socket.io'));
    return (fromSocketIo('engine.io') as { Socket?: { prototype: EngineSocket } }).Socket;
  } catch {
    return undefined;
  }
}
