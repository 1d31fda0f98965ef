// The bundled chat: the Socket.IO private-messaging example scaled out over many nodes, plus
// rooms. Sessions, messages and presence live in Redis, so that connecting never waits on another
// node. Events and payloads: README.md, "The bundled chat".
import { fileURLToPath } from 'node:url';
import type { Socket } from 'socket.io';
import type { AppContext } from '../node/app-loader.ts';
import { clientAddress } from '../node/client-address.ts';
import { KeyedLimiter, TokenBucket } from '../node/rate-limit.ts';
import { Presence } from './presence.ts';
import { serveStatic } from './static.ts';
import { patiently, storageError } from './storage-error.ts';
import {
  ChatStore,
  messageId,
  type PrivateMessage,
  type RoomMessage,
  type Session,
} from './store.ts';
import * as check from './validate.ts';

type Answer = { ok: true; [key: string]: unknown } | { error: string };
type Ack = (answer: Answer) => void;

/** Per-socket budget: sustained events per second, and the burst allowed on top. */
const RATE = { perSecond: 10, burst: 30 };

/**
 * New users per client address. Each costs Redis keys that live for days: a burst that a NAT'd
 * office does not reach in a morning, then one a second. Kept per node, but nginx sends an
 * address to one node (ip_hash), so this is close to a per-address budget.
 */
export const NEW_USERS = { perSecond: 1, burst: 100, addresses: 10_000 } as const;

/** Chat rooms live under their own prefix: a room can never be a userID or socket id room. */
export const roomKey = (room: string) => `room:${room}`;

interface ChatSocketData {
  session: Session;
  rooms: string[];
}

export default function chat({ io, app, redis, nodeId, log }: AppContext): void {
  const store = new ChatStore(redis);
  const newUsers = new KeyedLimiter(NEW_USERS.perSecond, NEW_USERS.burst, NEW_USERS.addresses);
  const presence = new Presence(
    redis,
    nodeId,
    {
      back: (users) => {
        for (const user of users) io.emit('user connected', user);
      },
      gone: (userIDs) => {
        for (const userID of userIDs) io.emit('user disconnected', userID);
      },
    },
    log,
  );
  presence.start();
  app.addHook('onClose', async () => {
    await presence.stop().catch((error: Error) => {
      log.warn({ err: error.message }, 'presence: could not take this node out');
    });
  });
  serveStatic(app, fileURLToPath(new URL('./public', import.meta.url)));

  // The handshake resolves the session and stores or renews it (one write per connection). Redis
  // away is waited out for a few seconds (a cluster failing over); a longer outage refuses the
  // connection with a reason the browser retries on.
  io.use(async (socket, next) => {
    const auth = (socket.handshake.auth ?? {}) as Record<string, unknown>;
    try {
      let session: Session | undefined;
      if (typeof auth.sessionID === 'string' && auth.sessionID.length <= check.LIMITS.id) {
        // One round trip: the rooms are read alongside the session (and dropped if it is gone).
        const id = auth.sessionID;
        const [found, rooms] = await patiently(() =>
          Promise.all([store.findSession(id), store.sessionRooms(id)]),
        );
        session = found;
        socket.data.rooms = rooms;
      }
      if (!session) {
        const name = check.username(auth.username);
        if (!name.ok) return next(new Error('invalid username'));
        if (!newUsers.take(clientAddress(socket.request))) {
          return next(new Error('too many new users from this address, try later'));
        }
        session = store.newSession(name.value);
        socket.data.rooms = [];
      }
      const resolved = session;
      await patiently(() => store.touch(resolved));
      socket.data.session = resolved;
      next();
    } catch (error) {
      const reason = storageError(error);
      log.warn({ err: (error as Error).message }, `handshake: ${reason}`);
      next(new Error(reason));
    }
  });

  io.on('connection', (socket: Socket) => {
    void onConnection(socket).catch((error: Error) => {
      // Without its `users` the client would wait for good: its connection is closed, and it
      // reconnects (to this node or another) and asks again.
      log.warn({ err: error.message }, 'chat: connection setup failed; closing it');
      socket.conn.close();
    });
  });

  async function onConnection(socket: Socket): Promise<void> {
    const { session, rooms } = socket.data as ChatSocketData;
    const { userID, username } = session;
    const bucket = new TokenBucket(RATE.perSecond, RATE.burst);

    // Every packet passes the rate limit first; one over it is answered on its ack and dropped.
    socket.use((packet, next) => {
      if (bucket.take()) return next();
      const ack = packet.at(-1);
      if (typeof ack === 'function') (ack as Ack)({ error: 'rate limited: slow down' });
    });

    /** Registers a handler that always answers its ack, whatever the client sent or Redis did. */
    const on = (event: string, handler: (payload: unknown) => Promise<Answer>) => {
      socket.on(event, async (payload: unknown, ack?: unknown) => {
        const reply: Ack = typeof ack === 'function' ? (ack as Ack) : () => {};
        try {
          reply(await handler(payload));
        } catch (error) {
          log.warn({ event, err: (error as Error).message }, 'chat: handler failed');
          const reason = storageError(error);
          reply({ error: reason === 'storage full' ? reason : 'storage unavailable, try again' });
        }
      });
    };

    // All of a user's sockets, on every node, share the room named by its userID. A resumed
    // session is back in its chat rooms before its first event (buffered emits of a reconnecting
    // client arrive right after the handshake).
    socket.join([userID, ...rooms.map(roomKey)]);

    on('private message', async (payload) => {
      const input = check.privateMessage(payload);
      if (!input.ok) return { error: input.error };
      if (!(await store.userExists(input.value.to))) return { error: 'unknown recipient' };
      const ts = Date.now();
      const message: PrivateMessage = { id: messageId(ts), ...input.value, from: userID, ts };
      await store.savePrivateMessage(message);
      io.to(message.to).to(userID).emit('private message', message);
      return { ok: true, message };
    });

    on('join', async (payload) => {
      const room = check.room(payload);
      if (!room.ok) return { error: room.error };
      // Join first, then read: a message stored in between is delivered live and also in the
      // history (clients deduplicate by id); the other order could miss it in both.
      await socket.join(roomKey(room.value));
      const history = await store.roomHistory(room.value);
      await store.rememberRoom(session.sessionID, room.value, true);
      return { ok: true, room: room.value, history };
    });

    on('messages', async (payload) => {
      const input = check.privateMessagesPage(payload);
      if (!input.ok) return { error: input.error };
      const messages = await store.privateMessages(userID, input.value.with, input.value.before);
      return { ok: true, messages };
    });

    on('room history', async (payload) => {
      const input = check.roomHistoryPage(payload);
      if (!input.ok) return { error: input.error };
      if (!socket.rooms.has(roomKey(input.value.room))) return { error: 'join the room first' };
      const history = await store.olderRoomMessages(input.value.room, input.value.before);
      return { ok: true, room: input.value.room, history };
    });

    on('leave', async (payload) => {
      const room = check.room(payload);
      if (!room.ok) return { error: room.error };
      await socket.leave(roomKey(room.value));
      await store.rememberRoom(session.sessionID, room.value, false);
      return { ok: true, room: room.value };
    });

    on('room message', async (payload) => {
      const input = check.roomMessage(payload);
      if (!input.ok) return { error: input.error };
      if (!socket.rooms.has(roomKey(input.value.room))) return { error: 'join the room first' };
      const ts = Date.now();
      const message: RoomMessage = { id: messageId(ts), ...input.value, from: userID, ts };
      // Stored before it is delivered or acknowledged: an acknowledged message is in the history.
      await store.saveRoomMessage(message);
      io.to(roomKey(message.room)).emit('room message', message);
      return { ok: true, message };
    });

    socket.on('disconnect', () => {
      void onDisconnect(session).catch((error: Error) => {
        log.warn({ err: error.message }, 'chat: presence update failed');
      });
    });

    socket.emit('session', { sessionID: session.sessionID, userID, username, node: nodeId });
    // Presence failing (Redis away) must not leave the client without its user list.
    const first = await presence.connected(userID, username).catch((error: Error) => {
      log.warn({ err: error.message }, 'presence: connect not recorded');
      return false;
    });
    if (first) socket.broadcast.emit('user connected', { userID, username });
    socket.emit('users', await patiently(() => store.usersFor(userID)));
  }

  async function onDisconnect(session: Session): Promise<void> {
    // The registry announces the user gone once its grace has passed with no socket anywhere.
    await presence.disconnected(session.userID);
    // Renews the time to live: a tab open for longer than the TTL keeps its user.
    await store.touch(session);
  }
}
