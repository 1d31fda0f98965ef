// The node's Redis connections: three clients (publish, subscribe, data) to one Redis (REDIS_URL
// or the kit's own), or three cluster clients to a Redis Cluster (REDIS_CLUSTER), and the adapter
// made of the first two: the pub/sub adapter, or the sharded one (SPUBLISH/SSUBSCRIBE).

import { setMaxListeners } from 'node:events';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { createAdapter as createStreamsAdapter } from '@socket.io/redis-streams-adapter';
import { hashCode } from '@socket.io/redis-streams-adapter/dist/util.js';
import type { FastifyBaseLogger } from 'fastify';
import {
  AbortError,
  createClient,
  createCluster,
  type RedisClientType,
  type RedisClusterType,
} from 'redis';
import type { AdapterName, NodeConfig, Recovery } from './config.ts';
import { compareOffsets } from './continuity.ts';
import { withOneBufferFrames } from './frames.ts';
import { keySlot } from './key-slot.ts';
import { keepShardedSubscriptionsThroughFailovers } from './sharded-unsubscribe.ts';

/**
 * What the application gets: a client of one Redis, or (REDIS_CLUSTER) a cluster client with the
 * same commands, each sent to the shard of its first key. On a cluster, keys one command or MULTI
 * uses together must share a hash tag (`{…}`), and `sendCommand` takes the key first.
 */
export type Redis = RedisClientType;
type Cluster = RedisClusterType;
type Client = Redis | Cluster;
type AdapterFactory =
  | ReturnType<typeof createAdapter>
  | ReturnType<typeof createShardedAdapter>
  | ReturnType<typeof createStreamsAdapter>;

export interface RedisClients {
  /** Publishes for the adapter. Its offline queue stays on: what is published while Redis is
   * away is sent when it returns, if within 5 s (node-redis's command timeout; for the adapters'
   * publications, 5 to 7.5 s: PUBLICATION_BOUND_MS); after that it is dropped (the
   * emit API answers 503). With ADAPTER=redis-streams nothing waits there: continuity.ts refuses
   * a write while the stream's connection is down. */
  readonly pub: Client;
  /** Subscribes for the adapter. node-redis re-subscribes after a reconnect
   * (test/integration/redis-restart.test.ts and test/multihost/ prove it; see socket.io#4845,
   * redis-adapter#446, node-redis#3311). */
  readonly sub: Client;
  /** Handed to the application. Offline queue off, so a command fails at once while Redis is
   * away instead of hanging an acknowledgement until it returns. */
  readonly data: Redis;
  /** The Socket.IO adapter on `pub` and `sub`. */
  adapter(key: string): AdapterFactory;
  /** ADAPTER=redis-streams: the streams that adapter writes, under the same key. */
  streams(key: string): StreamOf | undefined;
  ready(): boolean;
  notReadyReason(): string | undefined;
  close(): Promise<void>;
}

/** What the node asks of the stream a namespace's broadcasts go through (ADAPTER=redis-streams). */
export interface Stream {
  /** Waits until what this node wrote to the stream so far is on a replica (waitForReplica). */
  replicated(): Promise<number>;
  /** Whether the stream still holds the entry `offset` (or lost only what STREAM_MAXLEN trims). */
  holds(offset: string): Promise<boolean>;
  /** Whether a write would go out now (not into the client's queue, to be sent when it can). */
  writable(): boolean;
}

/** A namespace's stream, its key and slot worked out once (they are asked per broadcast). */
export type StreamOf = (nsp: string) => Stream;

export interface RedisEvents {
  onError(client: string, error: Error): void;
  onReady(client: string): void;
}

// Reconnect quickly at first, then at most every 2 s: an outage should end for the nodes within
// a couple of seconds of Redis answering again.
const reconnectStrategy = (retries: number): number => Math.min(100 * 2 ** retries, 2000);

const isCluster = (client: unknown): client is Cluster =>
  typeof (client as { nodeClient?: unknown }).nodeClient === 'function';

/**
 * Every connection (each cluster node's too) sends PING a second after the last reply and is
 * closed after 3 s without a byte: a Redis whose host vanished (no reset, no FIN; a cut link) is
 * left within 4 s, and a cluster client then looks up the topology again (after 1 s of failed
 * reconnects) and finds the promoted replica. Without it, commands and subscriptions to the lost
 * node hang until TCP gives up, minutes later. PING is allowed on subscribed connections too.
 */
const LIVENESS = { pingInterval: 1000, socketTimeout: 3000 } as const;

/**
 * A cluster node that went away is tried again every 0.5 s at most (connects given 1.5 s: the
 * nodes and Redis share a network), and while one is away the client asks a live node for the
 * topology every 0.5 s, so it finds a promoted replica within about half a second of the
 * promotion (the multi-host test "loses host 1 whole"). The defaults (5 s, and reconnects up to
 * 2 s apart) left a shard's keys refused for seconds after Redis had already failed over.
 */
const CLUSTER_NODE = {
  socket: {
    reconnectStrategy: (retries: number): number => Math.min(100 * 2 ** retries, 500),
    connectTimeout: 1500,
  },
  refreshAfterMs: 500,
} as const;

/**
 * A master's first connection still failing this long after its first failed attempt is given
 * up (giveUpFirstConnects). An attempt is given 1.5 s (CLUSTER_NODE).
 */
const FIRST_CONNECT_GIVE_UP_MS = 2000;

/**
 * node-redis 6.3 can route a shard to a dead master for good. After a failover the client was
 * not told of (one given back by hand), its next command on that shard goes to the old master,
 * now a replica, which answers MOVED to the new one. If the new master died meanwhile, the client
 * looks the topology up from the replica (which still names the dead master), opens a connection
 * to it and waits for that connection to be made, which never happens (a refused port is tried
 * again every 0.5 s without end): the lookup never ends, and a connection that was never ready
 * does not count as one reconnecting, so no other lookup is made. Every command on the shard then
 * waits for good, long after the replica took over (test/multihost/cluster-client.test.ts; the
 * multi-host test "loses host 1 whole" once saw half of host 1's clients never come back).
 *
 * So a master's first connection that still fails 2 s after its first failure is given up, and
 * the topology looked up again; until the replica has taken over, the next attempt meets the
 * same dead master and is given up in turn. It is given up right after a failed attempt, while
 * the client waits to try again: its connect then ends at once and node-redis drops the client.
 * (Destroyed during an attempt, a client whose attempt then succeeds stays, closed, as the
 * shard's client, and every command on the shard fails.) The clients the streams adapter makes
 * from `pub` (duplicate()) are watched too. Not covered: the subscribe connections. Their first
 * connect carries, in its own closure only, the subscriptions to restore, which giving it up
 * would lose; node-redis replaces them itself when a lookup drops their node.
 */
function giveUpFirstConnects(cluster: Cluster, log: FastifyBaseLogger, name: string): void {
  const failingSince = new WeakMap<object, number>();
  let lastLogged = 0;
  cluster.on('node-error', (_error: Error, where: { host?: string; port?: number }) => {
    const node = cluster.masters.find((m) => m.host === where.host && m.port === where.port);
    const client = node?.client;
    // connectPromise: set while a node's first connection is being made, and only then.
    if (node?.connectPromise === undefined || client === undefined || client.isReady) return;
    const now = Date.now();
    const since = failingSince.get(client) ?? now;
    failingSince.set(client, since);
    if (now - since < FIRST_CONNECT_GIVE_UP_MS) return;
    if (now - lastLogged > 5000) {
      lastLogged = now;
      log.warn(
        { client: name, node: node.address },
        'redis cluster: a master cannot be reached; looking up the topology again',
      );
    }
    client.destroy();
    cluster._slots.rediscover().catch(() => {});
  });
  const duplicate = cluster.duplicate.bind(cluster);
  cluster.duplicate = ((...args: Parameters<Cluster['duplicate']>) => {
    const copy = duplicate(...args) as unknown as Cluster;
    giveUpFirstConnects(copy, log, `${name} (duplicate)`);
    return copy;
  }) as unknown as Cluster['duplicate'];
}

/** After a WAIT no replica answered, a shard's next WAITs are skipped for this long (see below). */
const NO_REPLICA_PAUSE_MS = 5000;

/** One shard's replica acknowledgements: at most one WAIT on the connection at a time. */
interface ShardWait {
  /** The WAIT sent and not yet answered. */
  sent?: Promise<number>;
  /** The one that follows it, shared by every caller that came meanwhile. */
  following?: Promise<number>;
  noReplicaUntil: number;
}
const shardWaits = new WeakMap<object, Map<string, ShardWait>>();

/**
 * Waits until the writes this node sent to `key`'s shard reached a replica, at most `timeoutMs`;
 * a Redis Cluster replicates asynchronously, and a write acknowledged before that could vanish
 * when a failover promotes the replica. Resolves with the replicas that have it (one Redis
 * without replicas: 0 at once).
 *
 * WAIT blocks the connection it is sent on, and with it every command behind it, and it covers
 * every write the connection sent before it. So a shard has one WAIT in flight at most: callers
 * that come while it is out share the next one (a group commit), and a shard that lost its
 * replica (its host lost) holds the node's data connection for one timeout, not one per message.
 * After a WAIT that no replica answered, the shard's WAITs are skipped for 5 s (a write then is
 * as safe as the shard can make it: with no replica, no failover could keep it anyway). Measured
 * before this was per shard and one at a time: a host lost piled a WAIT per chat message behind
 * each other, 500 ms each, and the other hosts' handshakes on that shard timed out for 20 s
 * (test/multihost/ "loses host 1 whole").
 */
export function waitForReplica(redis: Redis, key: string, timeoutMs = 500): Promise<number> {
  return waitForReplicaOf(redis, keySlot(key), timeoutMs);
}

/** waitForReplica, for a slot known already. */
async function waitForReplicaOf(redis: unknown, slot: number, timeoutMs = 500): Promise<number> {
  const client = redis;
  if (!isCluster(client)) return 0;
  const master = client.slots[slot]?.master;
  if (!master) return 0;
  const waits = shardWaits.get(client) ?? new Map<string, ShardWait>();
  shardWaits.set(client, waits);
  const state = waits.get(master.address) ?? { noReplicaUntil: 0 };
  waits.set(master.address, state);
  // Sent on the connection the shard's writes went on. Not through the cluster client's own
  // routing: node-redis 6 follows WAIT's command tips (request_policy:all_shards) and sends it to
  // every master, so one shard without its master failed every acknowledgement, and every WAIT
  // blocked every shard's connection.
  const node = await client.nodeClient(master);
  return nextWait(state, () => node.sendCommand(['WAIT', '1', String(timeoutMs)]));
}

function nextWait(state: ShardWait, send: () => Promise<unknown>): Promise<number> {
  if (Date.now() < state.noReplicaUntil) return Promise.resolve(0);
  if (state.sent) {
    // Sent before this caller's writes were answered: it may not cover them, the next one does.
    state.following ??= state.sent
      .catch(() => 0)
      .then(() => {
        state.following = undefined;
        return nextWait(state, send);
      });
    return state.following;
  }
  const sent = send()
    .then((answer) => {
      const replicas = Number(answer);
      if (replicas < 1) state.noReplicaUntil = Date.now() + NO_REPLICA_PAUSE_MS;
      return replicas;
    })
    .finally(() => {
      state.sent = undefined;
    });
  state.sent = sent;
  return sent;
}

/** The password and TLS of the first seed hold for every node of the cluster it finds. */
function clusterDefaults(seeds: readonly string[]) {
  const first = new URL(seeds[0] as string);
  return {
    username: first.username ? decodeURIComponent(first.username) : undefined,
    password: first.password ? decodeURIComponent(first.password) : undefined,
  };
}

export async function connectRedis(
  config: Pick<NodeConfig, 'redisUrl' | 'redisCluster' | 'adapter' | 'recovery'>,
  log: FastifyBaseLogger,
  events: RedisEvents,
): Promise<RedisClients> {
  if (config.redisCluster !== undefined && !keepShardedSubscriptionsThroughFailovers()) {
    log.warn(
      'node-redis changed: sharded subscriptions may not survive a failover (sharded-unsubscribe.ts)',
    );
  }
  const lastLogged = new Map<string, number>();
  const reportError = (name: string, error: Error) => {
    events.onError(name, error);
    // A Redis outage raises an error per reconnect attempt, and per publication that cannot be
    // sent: one line a few seconds is enough.
    if (Date.now() - (lastLogged.get(name) ?? 0) > 5000) {
      lastLogged.set(name, Date.now());
      log.warn({ client: name, err: error.message }, 'redis client error');
    }
  };
  const watch = <C extends Client>(name: string, client: C): C => {
    const onError = (error: Error) => reportError(name, error);
    client.on('error', onError);
    // A cluster client reports a lost node (a master killed, before its replica takes over) here.
    if (isCluster(client)) {
      client.on('node-error', onError);
      // A channel's subscription that could not follow its slot to the new master: node-redis
      // drops it. Said loudly, as broadcasts on that channel no longer reach this node.
      client.on('sharded-channel-moved-error', (error: Error, channel: unknown) => {
        events.onError(name, error);
        log.error(
          { client: name, channel: String(channel), err: error.message },
          'redis cluster: a sharded subscription could not follow its slot',
        );
      });
    }
    client.on('ready', () => {
      events.onReady(name);
      log.info({ client: name }, 'redis client ready');
    });
    return client;
  };
  const socket = {
    reconnectStrategy,
    connectTimeout: 3000,
    socketTimeout: LIVENESS.socketTimeout,
  };
  const make = (name: string, disableOfflineQueue: boolean): Client => {
    if (config.redisCluster !== undefined) {
      const cluster = createCluster({
        rootNodes: config.redisCluster.map((url) => ({ url })),
        defaults: {
          ...clusterDefaults(config.redisCluster),
          disableOfflineQueue,
          pingInterval: LIVENESS.pingInterval,
          socket: { ...socket, ...CLUSTER_NODE.socket },
        },
        topologyRefreshOnReconnectionAttemptStrategy: CLUSTER_NODE.refreshAfterMs,
      }) as unknown as Cluster;
      giveUpFirstConnects(cluster, log, name);
      return watch(name, cluster);
    }
    return watch(
      name,
      createClient({
        url: config.redisUrl,
        // node-redis 6.3 reads a unix:// URL's host with WHATWG URL for Redis Enterprise's
        // maintenance notices on every handshake, fails, and never connects.
        ...(config.redisUrl?.startsWith('unix:')
          ? { maintNotifications: 'disabled' as const }
          : {}),
        disableOfflineQueue,
        pingInterval: LIVENESS.pingInterval,
        socket,
      }) as Redis,
    );
  };

  const pub = make('pub', false);
  const sub = make('sub', false);
  const data = make('data', true);
  const clients = { pub, sub, data } as const;
  const bounded = boundedPublications(pub, (e) => reportError('pub', e));
  const adapterPub = bounded.client;
  // A client of one Redis keeps retrying inside connect() while Redis is away; a cluster client
  // gives up at once when no seed answers, so it is asked again until one does. A node still
  // starts and serves its own clients meanwhile, reporting not-ready until Redis answers.
  const connectUntilDone = async (client: Client): Promise<unknown> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await client.connect();
      } catch (error) {
        if (!isCluster(client)) throw error;
        if (attempt % 10 === 0) {
          log.warn({ err: (error as Error).message }, 'redis cluster: no seed answers yet');
        }
        await new Promise((r) => setTimeout(r, reconnectStrategy(attempt)));
      }
    }
  };
  const connected = Promise.all(Object.values(clients).map(connectUntilDone));
  connected.catch((error: Error) => log.error({ err: error.message }, 'redis connect failed'));
  await Promise.race([connected, new Promise((r) => setTimeout(r, 5000).unref())]);

  const down = () =>
    Object.entries(clients)
      .filter(([, c]) => !c.isReady)
      .map(([name]) => name);
  return {
    pub,
    sub,
    data: data as Redis,
    adapter: (key) => withOneBufferFrames(makeAdapter(config, adapterPub, sub, key)),
    streams: (key) =>
      config.adapter === 'redis-streams' && config.recovery
        ? streamStore(pub, `${key}:stream`, config.recovery.streamCount)
        : undefined,
    ready: () => down().length === 0,
    notReadyReason() {
      const names = down();
      return names.length === 0 ? undefined : `redis unreachable (${names.join(', ')} client)`;
    },
    async close() {
      bounded.stop();
      await Promise.allSettled(
        // quit() waits for Redis to answer, which during an outage would hold up every drain.
        Object.values(clients).map((c) => (c.isReady ? c.close() : c.destroy())),
      );
    },
  };
}

/** A publication node-redis has not written to Redis this long after it was made is dropped: at
 * the earliest, as node-redis's default command timeout would (the adapters' publications carry
 * that bound instead of the timeout: see boundedPublications). */
export const PUBLICATION_BOUND_MS = 5000;
/** How often the bound is checked: a publication is dropped 5 to 7.5 s after it was made. */
const PUBLICATION_TURN_MS = PUBLICATION_BOUND_MS / 2;

/**
 * `pub` as the adapters see it: its publications carry no timer of their own. node-redis 6 gives
 * every command a 5 s timeout by default: an AbortSignal with a timer of its own, which fires 5 s
 * later even when the command was answered at once, and then makes an exception and an event.
 * Measured with `npm run bench:ab` (600 subscribers over 100 rooms, 2,000 publications/s, 4 A B B
 * A runs): without it 0.90 × the server CPU per delivery, every pair lower, p99 27.7 against 34.6
 * ms (README Performance).
 *
 * The bound stays, shared: the publications made in one turn of PUBLICATION_TURN_MS listen on
 * that turn's AbortSignals, aborted two turns after the turn ends. node-redis drops a command's
 * abort listener once it writes the command, so that rejects only what it still holds unwritten
 * (Redis away, a cluster shard down, or a connection stalled while the client still counts as
 * ready): dropped 5 to 7.5 s after it was made, never sent late after a reconnect. One written is
 * answered, or rejected when the connection is lost (closed, or silent for
 * LIVENESS.socketTimeout). test/integration/publish-timers.test.ts and
 * test/multihost/cluster-client.test.ts show it.
 *
 * The adapters do not catch a broadcast's failed publication: `failed` hears of every failure,
 * so that an outage does not raise an unhandled rejection per publication.
 */
function boundedPublications(
  pub: Client,
  failed: (error: Error) => void,
): { client: Client; stop(): void } {
  const untimedOn = (signal: AbortSignal): Redis => {
    // Up to PER_SIGNAL publications queued behind a stalled connection listen on it (Node warns
    // past 10 listeners).
    setMaxListeners(0, signal);
    // RedisCluster has the same withCommandOptions, applied to the shard's client.
    return (pub as Redis).withCommandOptions({
      timeout: undefined,
      abortSignal: signal,
    }) as unknown as Redis;
  };
  // Node's EventTarget scans a signal's listeners on every add and remove: a signal takes at most
  // PER_SIGNAL publications, so that an outage at thousands a second costs no more per
  // publication than a quiet one (a turn's signals are aborted together).
  const PER_SIGNAL = 128;
  const turns: AbortController[][] = [[], [], []];
  let untimed: Redis;
  let onSignal = 0;
  const nextSignal = () => {
    const controller = new AbortController();
    turns[turns.length - 1]?.push(controller);
    untimed = untimedOn(controller.signal);
    onSignal = 0;
  };
  nextSignal();
  const turn = setInterval(() => {
    for (const controller of turns.shift() ?? []) controller.abort();
    turns.push([]);
    nextSignal();
  }, PUBLICATION_TURN_MS);
  turn.unref();
  const view = () => {
    if (++onSignal > PER_SIGNAL) nextSignal();
    return untimed;
  };
  const report = (error: Error) =>
    failed(
      error instanceof AbortError
        ? new Error(`publication not written to Redis within ${PUBLICATION_BOUND_MS} ms, dropped`)
        : error,
    );
  // The adapters' two ways to publish, each through the bound's current signal.
  const send =
    (method: 'publish' | 'sPublish') => (channel: string | Buffer, message: string | Buffer) => {
      const sent = view()[method](channel, message);
      sent.catch(report);
      return sent;
    };
  const own: Record<PropertyKey, unknown> = {
    publish: send('publish'),
    sPublish: send('sPublish'),
  };
  own.PUBLISH = own.publish;
  own.SPUBLISH = own.sPublish;
  // Any other method, bound to the client once rather than on every read.
  const bound = new Map<PropertyKey, { of: unknown; fn: unknown }>();
  const client = new Proxy(pub, {
    get(target, property) {
      if (Object.hasOwn(own, property)) return own[property];
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function' || property === 'constructor') return value;
      const known = bound.get(property);
      if (known !== undefined && known.of === value) return known.fn;
      const fn = value.bind(target);
      bound.set(property, { of: value, fn });
      return fn;
    },
  });
  return { client, stop: () => clearInterval(turn) };
}

/** The adapter's publishing client writes each namespace's stream (XADD) on its shard's master. */
function streamStore(pub: Client, name: string, count: number): StreamOf {
  return (nsp) => {
    // As the adapter names them: one stream, or `<name>-<i>` with the namespace's hash picking i.
    const key = count === 1 ? name : `${name}-${hashCode(nsp) % count}`;
    const slot = keySlot(key);
    const client: unknown = pub;
    const redis = pub as Redis;
    return {
      replicated: () => waitForReplicaOf(pub, slot),
      writable() {
        if (!isCluster(client)) return redis.isReady;
        // The connection to the stream's master, once made (the cluster client makes it on use).
        const master = client.slots[slot]?.master;
        return master?.client === undefined || master.client.isReady;
      },
      async holds(offset) {
        if ((await redis.xRange(key, offset, offset))?.length) return true;
        // Older than the stream's first entry: trimmed (STREAM_MAXLEN), not lost.
        const first = (await redis.xRange(key, '-', '+', { COUNT: 1 }))?.[0];
        return first !== undefined && compareOffsets(first.id, offset) > 0;
      },
    };
  };
}

function makeAdapter(
  config: { adapter: AdapterName; recovery: Recovery | undefined },
  pub: Client,
  sub: Client,
  key: string,
): AdapterFactory {
  if (config.adapter === 'redis-streams' && config.recovery) {
    // Broadcasts go through a stream (XADD), read by every node; the stream is what a client
    // that comes back replays from. The adapter makes its own connections from `pub` (one per
    // stream, blocked in XREAD, and one for its pub/sub requests). XREAD blocks for 1 s at most:
    // a block as long as the clients' 3 s socket timeout would have the connection cut as silent.
    return createStreamsAdapter(pub, {
      streamName: `${key}:stream`,
      streamCount: config.recovery.streamCount,
      maxLen: config.recovery.streamMaxLen,
      blockTimeInMs: 1000,
      channelPrefix: key,
      sessionKeyPrefix: `${key}:session:`,
      useShardedPubSub: isCluster(pub),
      onlyPlaintext: false,
    });
  }
  if (config.adapter === 'redis-sharded') {
    // Static: one channel per namespace, subscribed when the namespace is made. In the default
    // dynamic mode each room gets a channel subscribed without waiting when its first member
    // joins a node (the adapter does not wait for SSUBSCRIBE), and a message sent to the room
    // before that subscription completes is lost.
    return createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode: 'static' });
  }
  return createAdapter(pub, sub, { key });
}
