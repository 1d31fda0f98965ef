// Sessions, users and messages in Redis, each key with a time to live, so that a user who
// reloads the page or reconnects to another node keeps its identity and history.
// Cluster-safe (REDIS_CLUSTER): every MULTI touches one key, and what touches several keys sends
// one command (or MULTI) per key; the presence keys share a hash tag (presence-keys.ts). A stored
// message is acknowledged only once a replica has it (waitForReplica): a failover loses none.
import { randomUUID } from 'node:crypto';
import { type Redis, waitForReplica } from '../node/redis.ts';
import { presenceKey } from './presence-keys.ts';
import { onlineScript } from './presence-scripts.ts';

/** How long an idle session, a user and stored messages are kept. */
export const TTL_SECONDS = 7 * 24 * 3600;
/** Kept per conversation (two users) and per room. */
const PRIVATE_HISTORY = 1000;
const ROOM_HISTORY = 500;
/** The most messages one reply carries: per user in `users`, on `join`, per page. */
export const PAGE = 50;
/** At most this many users (the most recently seen) are listed in `users`. */
export const USERS_LISTED = 500;
/** Conversations indexed per user by recency; older ones are still paged through `messages`. */
const CONVERSATIONS_KEPT = 1000;
/** Only the most recent conversations carry messages in `users`: it bounds what Redis reads. */
const CONVERSATIONS_WITH_MESSAGES = 10;
/**
 * Bytes of stored message JSON that one `users` reply may carry, newest conversations first: far
 * below the 4 MB a connection may leave unsent (services/node/engine-limits.ts), whoever writes.
 */
const USERS_MESSAGE_BYTES = 256 * 1024;
/**
 * Usernames a node keeps: a user's name never changes (another name is another user), so a
 * `users` reply asks Redis only for the names this node has not seen. Oldest first out: 10,000
 * names are about a megabyte, and twenty times the users one reply lists.
 */
const USERNAMES_KEPT = 10_000;

export interface Session {
  sessionID: string;
  userID: string;
  username: string;
}

export interface PrivateMessage {
  id: string;
  content: string;
  from: string;
  to: string;
  ts: number;
}

export interface RoomMessage {
  id: string;
  room: string;
  content: string;
  from: string;
  ts: number;
}

export interface KnownUser {
  userID: string;
  username: string;
  connected: boolean;
}

// A conversation and a room are each a sorted set whose members are `<id>|<json>`, all with score
// 0: ids sort by time, so the set is ordered lexically by time and a page is one
// ZRANGE … BYLEX REV LIMIT, bounded whatever the history holds.
const key = {
  session: (id: string) => `chat:session:${id}`,
  user: (id: string) => `chat:user:${id}`,
  users: 'chat:users',
  /** Sorted set per user: the other party of each of its conversations → ts of the latest message. */
  conversations: (userID: string) => `chat:convs:${userID}`,
  conversation: (a: string, b: string) => `chat:dm:${a < b ? `${a}|${b}` : `${b}|${a}`}`,
  room: (room: string) => `chat:room-log:${room}`,
  sessionRooms: (sessionID: string) => `chat:session-rooms:${sessionID}`,
};

/** Members of a history set, newest first, parsed; a corrupt entry is skipped. */
function parseMembers<T>(members: string[]): T[] {
  const out: T[] = [];
  for (const member of members) {
    try {
      out.push(JSON.parse(member.slice(member.indexOf('|') + 1)) as T);
    } catch {
      // A corrupt entry is skipped rather than failing the whole page.
    }
  }
  return out;
}

/** The newest `PAGE` members of a history set strictly older than message id `before`. */
const pageRange = (before: string | undefined) =>
  [
    before === undefined ? '+' : `(${before}`,
    '-',
    { BY: 'LEX', REV: true, LIMIT: { offset: 0, count: PAGE } },
  ] as const;

/** Message ids sort by time, then by a random suffix: unique across nodes without coordination. */
export function messageId(ts: number): string {
  return `${ts.toString(36).padStart(9, '0')}-${randomUUID().slice(0, 8)}`;
}

export class ChatStore {
  private readonly names = new Map<string, string>();
  private readonly asking = new Map<string, Promise<string | null>>();

  constructor(private readonly redis: Redis) {}

  async findSession(sessionID: string): Promise<Session | undefined> {
    const data = await this.redis.hGetAll(key.session(sessionID));
    if (!data.userID || !data.username) return undefined;
    return { sessionID, userID: data.userID, username: data.username };
  }

  /** A new session; the handshake stores it with touch(). */
  newSession(username: string): Session {
    return { sessionID: randomUUID(), userID: randomUUID(), username };
  }

  /** Stores or refreshes a session and its user, and renews their time to live. */
  async touch(session: Session): Promise<void> {
    const sessionKey = key.session(session.sessionID);
    const userKey = key.user(session.userID);
    await Promise.all([
      this.redis
        .multi()
        .hSet(sessionKey, { userID: session.userID, username: session.username })
        .expire(sessionKey, TTL_SECONDS)
        .exec(),
      this.redis
        .multi()
        .hSet(userKey, { username: session.username })
        .expire(userKey, TTL_SECONDS)
        .exec(),
      this.redis.zAdd(key.users, { score: Date.now(), value: session.userID }),
      // The rooms live as long as the session they belong to (an empty set has no key: no-op).
      this.redis.expire(key.sessionRooms(session.sessionID), TTL_SECONDS),
    ]);
  }

  /** Rooms a session has joined, so a reconnecting socket is back in them before its first event. */
  async sessionRooms(sessionID: string): Promise<string[]> {
    return this.redis.sMembers(key.sessionRooms(sessionID));
  }

  async rememberRoom(sessionID: string, room: string, joined: boolean): Promise<void> {
    const k = key.sessionRooms(sessionID);
    if (joined) await this.redis.multi().sAdd(k, room).expire(k, TTL_SECONDS).exec();
    else await this.redis.sRem(k, room);
  }

  async userExists(userID: string): Promise<boolean> {
    return (await this.redis.exists(key.user(userID))) === 1;
  }

  /**
   * Every known user (most recently seen first, bounded) and whether the presence registry counts
   * it online, with the latest messages exchanged with `me`, oldest first, for the most recent
   * conversations only and within a byte budget; the others carry none and are paged through
   * `messages`. Two round trips: a transaction and a read, then one script and at most 10 history
   * reads, plus one read per listed user whose name this node has not kept yet, whatever the
   * histories hold and however many users are listed.
   */
  async usersFor(me: string): Promise<Array<KnownUser & { messages: PrivateMessage[] }>> {
    // Commands sent in one go are pipelined by the client (on a cluster, per shard).
    const [[, ids], recent] = (await Promise.all([
      this.redis
        .multi()
        .zRemRangeByScore(key.users, '-inf', Date.now() - TTL_SECONDS * 1000)
        .zRange(key.users, 0, USERS_LISTED - 1, { REV: true })
        .exec(),
      this.redis.zRange(key.conversations(me), 0, CONVERSATIONS_WITH_MESSAGES - 1, { REV: true }),
    ])) as unknown as [[number, string[]], string[]];
    const shown = new Set(ids);
    const talked = recent.filter((id) => shown.has(id));

    const [usernames, online, ...histories] = (await Promise.all([
      this.usernames(ids),
      onlineScript.run(this.redis, [presenceKey.leaving], [presenceKey.userPrefix, ...ids]),
      ...talked.map((id) => this.redis.zRange(key.conversation(me, id), ...pageRange(undefined))),
    ])) as [Array<string | null>, number[], ...string[][]];

    // Newest conversation first, each newest message first, until the budget is spent: what each
    // user carries is still its latest messages, so paging with the oldest id misses nothing.
    const messages = new Map<string, PrivateMessage[]>();
    let budget = USERS_MESSAGE_BYTES;
    talked.forEach((id, i) => {
      const members = histories[i] as string[];
      const kept: string[] = [];
      for (const member of members) {
        budget -= Buffer.byteLength(member);
        if (budget < 0) break;
        kept.push(member);
      }
      messages.set(id, parseMembers<PrivateMessage>(kept).reverse());
    });

    const users: Array<KnownUser & { messages: PrivateMessage[] }> = [];
    ids.forEach((userID, i) => {
      const username = usernames[i];
      if (!username) return;
      users.push({
        userID,
        username,
        // Online: a socket on some instance, or in its grace (not yet announced gone).
        connected: online[i] === 1,
        messages: messages.get(userID) ?? [],
      });
    });
    return users;
  }

  /**
   * Each user's name, null where its key has expired. Redis is asked only for names neither kept
   * nor already being asked for: the connects of a storm on a freshly started node share one
   * question per user. What a call has found is its own, whatever is evicted meanwhile.
   */
  private async usernames(ids: string[]): Promise<Array<string | null>> {
    const kept = ids.map((id) => this.names.get(id));
    // Every name kept, the usual case once a node has served a few connects: no promise per user.
    if (kept.every((name) => name !== undefined)) return kept;
    return Promise.all(ids.map((id, i) => kept[i] ?? this.asking.get(id) ?? this.ask(id)));
  }

  private ask(id: string): Promise<string | null> {
    const asked = this.redis
      .hGet(key.user(id), 'username')
      .then((name) => {
        if (name) {
          this.names.set(id, name);
          if (this.names.size > USERNAMES_KEPT) {
            this.names.delete(this.names.keys().next().value as string);
          }
        }
        return name ?? null;
      })
      .finally(() => this.asking.delete(id));
    this.asking.set(id, asked);
    return asked;
  }

  /** Older private messages between `me` and `other`, newest first. */
  async privateMessages(me: string, other: string, before?: string): Promise<PrivateMessage[]> {
    const members = await this.redis.zRange(key.conversation(me, other), ...pageRange(before));
    return parseMembers<PrivateMessage>(members);
  }

  /** Stores the message and moves the conversation to the top of both parties' index. */
  async savePrivateMessage(message: PrivateMessage): Promise<void> {
    const conversation = key.conversation(message.from, message.to);
    await Promise.all([
      this.append(conversation, message, PRIVATE_HISTORY),
      ...[
        [message.from, message.to],
        [message.to, message.from],
      ].map(([mine, other]) => {
        const k = key.conversations(mine as string);
        return (
          this.redis
            .multi()
            // GT: a message stamped earlier by a node whose clock lags never moves it back.
            .zAdd(k, { score: message.ts, value: other as string }, { comparison: 'GT' })
            .zRemRangeByRank(k, 0, -(CONVERSATIONS_KEPT + 1))
            .expire(k, TTL_SECONDS)
            .exec()
        );
      }),
    ]);
    await waitForReplica(this.redis, conversation);
  }

  async saveRoomMessage(message: RoomMessage): Promise<void> {
    await this.append(key.room(message.room), message, ROOM_HISTORY);
    await waitForReplica(this.redis, key.room(message.room));
  }

  /** The latest room messages, oldest first (as `join` answers). */
  async roomHistory(room: string): Promise<RoomMessage[]> {
    return (await this.olderRoomMessages(room)).reverse();
  }

  /** Older room messages, newest first. */
  async olderRoomMessages(room: string, before?: string): Promise<RoomMessage[]> {
    return parseMembers<RoomMessage>(await this.redis.zRange(key.room(room), ...pageRange(before)));
  }

  /** Adds a message to a history set and keeps it bounded, in one MULTI on that key. */
  private async append(k: string, message: { id: string }, keep: number): Promise<void> {
    await this.redis
      .multi()
      .zAdd(k, { score: 0, value: `${message.id}|${JSON.stringify(message)}` })
      .zRemRangeByRank(k, 0, -(keep + 1))
      .expire(k, TTL_SECONDS)
      .exec();
  }
}
