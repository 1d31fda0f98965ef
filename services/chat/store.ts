// Sessions, users and messages in Redis, each key with a time to live, so that a user who
// reloads the page or reconnects to another node keeps its identity and history.
import { randomUUID } from 'node:crypto';
import type { Redis } from '../node/redis.ts';

/** How long an idle session, a user and stored messages are kept. */
export const TTL_SECONDS = 7 * 24 * 3600;
const PRIVATE_HISTORY = 1000;
const ROOM_HISTORY = 500;
/** Room history sent on `join`. */
export const ROOM_HISTORY_ON_JOIN = 200;
/** At most this many users (the most recently seen) are listed in `users`. */
const USERS_LISTED = 500;

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

const key = {
  session: (id: string) => `chat:session:${id}`,
  user: (id: string) => `chat:user:${id}`,
  users: 'chat:users',
  privateMessages: (userID: string) => `chat:pm:${userID}`,
  room: (room: string) => `chat:room:${room}`,
  sessionRooms: (sessionID: string) => `chat:session-rooms:${sessionID}`,
};

function parseAll<T>(items: string[]): T[] {
  const out: T[] = [];
  for (const item of items) {
    try {
      out.push(JSON.parse(item) as T);
    } catch {
      // A corrupt entry is skipped rather than failing the whole history.
    }
  }
  return out;
}

/** Message ids sort by time, then by a random suffix: unique across nodes without coordination. */
export function messageId(ts: number): string {
  return `${ts.toString(36).padStart(9, '0')}-${randomUUID().slice(0, 8)}`;
}

export class ChatStore {
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

  /** Stores or refreshes a session and its user, and marks the user connected. */
  async touch(session: Session, connected = true): Promise<void> {
    await this.redis
      .multi()
      .hSet(key.session(session.sessionID), { userID: session.userID, username: session.username })
      .expire(key.session(session.sessionID), TTL_SECONDS)
      .hSet(key.user(session.userID), {
        username: session.username,
        connected: connected ? '1' : '0',
      })
      .expire(key.user(session.userID), TTL_SECONDS)
      .zAdd(key.users, { score: Date.now(), value: session.userID })
      // The rooms live as long as the session they belong to (an empty set has no key: no-op).
      .expire(key.sessionRooms(session.sessionID), TTL_SECONDS)
      .exec();
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

  /** Every known user (most recently seen first, bounded) with the messages exchanged with `me`. */
  async usersFor(me: string): Promise<Array<KnownUser & { messages: PrivateMessage[] }>> {
    const now = Date.now();
    await this.redis.zRemRangeByScore(key.users, '-inf', now - TTL_SECONDS * 1000);
    const ids = await this.redis.zRange(key.users, 0, USERS_LISTED - 1, { REV: true });
    const multi = this.redis.multi();
    for (const id of ids) multi.hGetAll(key.user(id));
    multi.lRange(key.privateMessages(me), 0, -1);
    const replies = await multi.exec();
    const history = parseAll<PrivateMessage>(replies.at(-1) as unknown as string[]);
    const byCounterpart = new Map<string, PrivateMessage[]>();
    for (const message of history) {
      const other = message.from === me ? message.to : message.from;
      const list = byCounterpart.get(other) ?? [];
      list.push(message);
      byCounterpart.set(other, list);
    }
    const users: Array<KnownUser & { messages: PrivateMessage[] }> = [];
    ids.forEach((userID, i) => {
      const data = replies[i] as unknown as Record<string, string>;
      if (!data?.username) return;
      users.push({
        userID,
        username: data.username,
        connected: data.connected === '1',
        messages: byCounterpart.get(userID) ?? [],
      });
    });
    return users;
  }

  async savePrivateMessage(message: PrivateMessage): Promise<void> {
    const json = JSON.stringify(message);
    const multi = this.redis.multi();
    for (const owner of new Set([message.from, message.to])) {
      multi
        .rPush(key.privateMessages(owner), json)
        .lTrim(key.privateMessages(owner), -PRIVATE_HISTORY, -1)
        .expire(key.privateMessages(owner), TTL_SECONDS);
    }
    await multi.exec();
  }

  async saveRoomMessage(message: RoomMessage): Promise<void> {
    await this.redis
      .multi()
      .rPush(key.room(message.room), JSON.stringify(message))
      .lTrim(key.room(message.room), -ROOM_HISTORY, -1)
      .expire(key.room(message.room), TTL_SECONDS)
      .exec();
  }

  async roomHistory(room: string, count = ROOM_HISTORY_ON_JOIN): Promise<RoomMessage[]> {
    return parseAll<RoomMessage>(await this.redis.lRange(key.room(room), -count, -1));
  }
}
