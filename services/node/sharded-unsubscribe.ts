// node-redis 6.3 loses a sharded subscription for good when Redis ends it while any command of
// that connection waits for its answer.
//
// A Redis Cluster master that loses its slots (a failover demotes it: CLUSTER FAILOVER, a master
// given back by hand as deploy/README.md says) sends every client subscribed to a channel of
// those slots a SUNSUBSCRIBE of its own. node-redis then moves the channel's listeners to the
// slot's new master, but only when nothing waits for an answer on that connection: otherwise it
// takes the SUNSUBSCRIBE for an answer to the waiting command (the PING it sends every second to
// find silent connections, LIVENESS in redis.ts), and drops it. The client keeps the listeners,
// Redis has no subscription, and the node hears nothing more on that channel: with the sharded
// adapter, no broadcast from another node. Measured on a Redis Cluster of three masters and
// three replicas on one host, clients pinging every 10 ms: the subscription was lost at the 1st,
// 8th and 2nd CLUSTER FAILOVER of three runs; without pings none in 10; with this, none in 45
// (15 per run). The kit pings every second, so the race is rarer there, not absent: the
// multi-host test "loses host 1" once found a node deaf after a master was given back,
// most likely this.
// test/integration/sharded-failover.test.ts fails without this (at its 2nd failover).
//
// So each connection's pub/sub state counts, per channel, the confirmations its own sharded
// unsubscribes still wait for (released when one fails or is never sent), and a SUNSUBSCRIBE
// beyond them is one Redis sent of its own: its listeners go where node-redis sends them when
// nothing is waiting (the client's 'sharded-channel-moved', which the cluster client answers by
// looking the topology up again and subscribing on the slot's master). node-redis keeps these
// classes private: one that moved or renamed them keeps its own way (and fails that test).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

type OnMoved = (channel: string, listeners: unknown) => void;
type Reply = unknown[];
interface Command {
  args?: unknown[];
  reject?: (...args: unknown[]) => unknown;
}
interface PubSubLike {
  listeners: Record<string, Map<unknown, unknown>>;
  unsubscribe(
    type: string,
    channels?: unknown,
    listener?: unknown,
    bufferMode?: boolean,
  ): Command | undefined;
  handleMessageReply(reply: Reply): boolean;
  removeShardedListeners(channel: string): unknown;
}
type PubSubClass = (new (
  clientId: unknown,
) => PubSubLike) & {
  isShardedUnsubscribe(reply: Reply): boolean;
};
type QueueClass = new (...args: unknown[]) => object;

let patched: boolean | undefined;

/** Patches node-redis once per process; false where its classes are not as expected. */
export function keepShardedSubscriptionsThroughFailovers(): boolean {
  patched ??= patch();
  return patched;
}

function patch(): boolean {
  const require = createRequire(import.meta.url);
  let pubSubModule: { PubSub?: PubSubClass; PUBSUB_TYPE?: { SHARDED?: string } };
  let queueModule: { default?: QueueClass };
  try {
    const lib = join(dirname(require.resolve('@redis/client')), 'lib', 'client');
    pubSubModule = require(join(lib, 'pub-sub.js'));
    queueModule = require(join(lib, 'commands-queue.js'));
  } catch {
    return false;
  }
  const Base = pubSubModule.PubSub;
  const BaseQueue = queueModule.default;
  const SHARDED = pubSubModule.PUBSUB_TYPE?.SHARDED;
  if (
    typeof Base !== 'function' ||
    typeof BaseQueue !== 'function' ||
    SHARDED === undefined ||
    typeof Base.isShardedUnsubscribe !== 'function' ||
    typeof Base.prototype.handleMessageReply !== 'function' ||
    typeof Base.prototype.removeShardedListeners !== 'function' ||
    BaseQueue.length < 3
  ) {
    return false;
  }

  /** The queue being made hands its client's 'sharded-channel-moved' to its pub/sub state. */
  let constructing: OnMoved | undefined;

  const isShardedUnsubscribe = (reply: Reply) => Base.isShardedUnsubscribe(reply);

  class PubSub extends Base {
    readonly onMoved = constructing;
    /** Per channel, confirmations still to come of the sharded unsubscribes this client sent. */
    readonly asked = new Map<string, number>();

    override unsubscribe(
      type: string,
      channels?: unknown,
      listener?: unknown,
      bufferMode?: boolean,
    ): Command | undefined {
      const command = super.unsubscribe(type, channels, listener, bufferMode);
      if (type !== SHARDED || !command) return command;
      const named = (command.args ?? []).slice(1).map(String);
      // Without channels: one confirmation per channel subscribed (their listeners stay until
      // the command is answered).
      const expected =
        named.length > 0 ? named : [...(this.listeners[type]?.keys() ?? [])].map(String);
      for (const channel of expected) this.asked.set(channel, (this.asked.get(channel) ?? 0) + 1);
      // Failed or never sent (its connection lost first): no confirmation will come.
      const reject = command.reject;
      command.reject = (...args: unknown[]) => {
        for (const channel of expected) this.answered(channel);
        return reject?.(...args);
      };
      return command;
    }

    override handleMessageReply(reply: Reply): boolean {
      if (super.handleMessageReply(reply)) return true;
      if (!isShardedUnsubscribe(reply)) return false;
      const channel = String(reply[1]);
      if (this.answered(channel)) return false;
      if (this.onMoved === undefined || !this.listeners[SHARDED as string]?.has(channel)) {
        return false;
      }
      this.onMoved(channel, this.removeShardedListeners(channel));
      return true;
    }

    /** Counts one confirmation of `channel` in; false if none was to come. */
    answered(channel: string): boolean {
      const count = this.asked.get(channel) ?? 0;
      if (count === 0) return false;
      if (count === 1) this.asked.delete(channel);
      else this.asked.set(channel, count - 1);
      return true;
    }
  }

  class Queue extends BaseQueue {
    constructor(...args: unknown[]) {
      constructing = typeof args[2] === 'function' ? (args[2] as OnMoved) : undefined;
      try {
        super(...args);
      } finally {
        constructing = undefined;
      }
    }
  }

  (pubSubModule as { PubSub: PubSubClass }).PubSub = PubSub as unknown as PubSubClass;
  (queueModule as { default: QueueClass }).default = Queue;
  return true;
}
