// The presence registry's keys (presence.ts writes them, store.ts reads them for `users`). The
// hash tag keeps them in one slot, so its scripts stay valid on a Redis Cluster.
const PREFIX = 'chat:{presence}';

export const presenceKey = {
  /** Sorted set: instance id → time of its last heartbeat (ms). */
  instances: `${PREFIX}:instances`,
  /** Hash per instance: userID → number of that user's sockets on the instance. */
  instancePrefix: `${PREFIX}:instance:`,
  instance: (instance: string) => `${PREFIX}:instance:${instance}`,
  /** Set per user: the instances holding at least one of its sockets. */
  userPrefix: `${PREFIX}:user:`,
  userInstances: (userID: string) => `${PREFIX}:user:${userID}`,
  /** Sorted set: userID → when its last socket went; announced gone once the grace has passed. */
  leaving: `${PREFIX}:leaving`,
};
