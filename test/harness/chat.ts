// A chat participant: a real socket.io-client from source network 127.0.N.1, with the session
// and user list the server sent on connect.
import type { ManagerOptions, Socket } from 'socket.io-client';
import { ChatStore, type Session } from '../../services/chat/store.ts';
import type { Redis } from '../../services/node/redis.ts';
import { ask, client, connected, next, percentile } from './clients.ts';

export interface SessionInfo {
  sessionID: string;
  userID: string;
  username: string;
  node: string;
}

export interface UserInfo {
  userID: string;
  username: string;
  connected: boolean;
  messages: Array<{ id: string; content: string; from: string; to: string; ts: number }>;
}

export interface ChatUser {
  socket: Socket;
  session: SessionInfo;
  users: UserInfo[];
}

export async function chatUser(
  baseUrl: string,
  net: number | string,
  auth: { username: string } | { sessionID: string },
  options: Partial<ManagerOptions> = {},
): Promise<ChatUser> {
  const socket = client(baseUrl, { net, auth, ...options });
  // As the browser client does: once the server has issued a session, reconnects resume it.
  socket.on('session', (s: SessionInfo) => {
    socket.auth = { sessionID: s.sessionID };
  });
  const session = next<SessionInfo>(socket, 'session');
  const users = next<UserInfo[]>(socket, 'users');
  await connected(socket);
  return { socket, session: await session, users: await users };
}

/**
 * `count` users with a session each, `<prefix><i>`, written through the store the nodes use (its
 * keys and indexes): many users at once, past the per-address limit on new users.
 */
export function storedSessions(redis: Redis, count: number, prefix: string): Promise<Session[]> {
  const store = new ChatStore(redis);
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const session = store.newSession(`${prefix}${i}`);
      await store.touch(session);
      return session;
    }),
  );
}

/**
 * What the bundled browser client (services/chat/public/app.js) does when the server refuses a
 * connection because its Redis is away: socket.io-client does not retry a refusal by itself, the
 * page tries again after 2 to 4 s.
 */
export function retryLikeTheBrowser(socket: Socket): void {
  socket.on('connect_error', (error: Error) => {
    if (socket.active) return;
    if (error.message === 'storage unavailable' || error.message === 'storage full') {
      setTimeout(() => socket.connect(), 2000 + Math.random() * 2000);
    }
  });
}

/** Users on different nodes: tries source networks from `from` on until the node differs. */
export async function chatUserAwayFrom(
  baseUrl: string,
  nodes: string[],
  auth: { username: string } | { sessionID: string },
  from = 1,
): Promise<ChatUser & { net: number }> {
  for (let net = from; net < from + 60; net++) {
    const user = await chatUser(baseUrl, net, auth);
    if (!nodes.includes(user.session.node)) return { ...user, net };
    user.socket.disconnect();
    // A fresh username creates a new user each try; resume the same one next time.
    auth = { sessionID: user.session.sessionID };
  }
  throw new Error(`no source network led away from ${nodes.join(', ')}`);
}

/** A user served by `node`: tries source networks from `from` on until nginx sends it there. */
export async function chatUserOn(
  baseUrl: string,
  node: string,
  auth: { username: string } | { sessionID: string },
  from = 1,
): Promise<ChatUser & { net: number }> {
  for (let net = from; net < from + 60; net++) {
    const user = await chatUser(baseUrl, net, auth);
    if (user.session.node === node) return { ...user, net };
    user.socket.disconnect();
    auth = { sessionID: user.session.sessionID };
  }
  throw new Error(`no source network led to ${node}`);
}

/**
 * Room messages from `sender` to `receiver` (both in `room`), one at a time, paced under the
 * chat's per-socket event limit: the time from sending each to its arrival, acknowledgement
 * included. Throws when one is refused or arrives with other content.
 */
export async function roomLatency(
  sender: Socket,
  receiver: Socket,
  room: string,
  count = 50,
): Promise<number[]> {
  const latency: number[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 110));
    const got = next<{ content: string }>(receiver, 'room message');
    const began = performance.now();
    const reply = await ask<{ ok?: true }>(sender, 'room message', { room, content: `m${i}` });
    if (reply.ok !== true) throw new Error(`room message ${i}: ${JSON.stringify(reply)}`);
    const content = (await got).content;
    if (content !== `m${i}`) throw new Error(`room message ${i} arrived as ${content}`);
    latency.push(performance.now() - began);
  }
  return latency;
}

/** "p50 3.2 ms, p99 6.1 ms" */
export const p50p99 = (timings: readonly number[]) =>
  `p50 ${percentile(timings, 50).toFixed(1)} ms, p99 ${percentile(timings, 99).toFixed(1)} ms`;
