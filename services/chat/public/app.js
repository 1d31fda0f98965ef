// The bundled chat's browser client: private messages, rooms, presence. No framework and no
// build step; every piece of user text reaches the page through textContent.

const SESSION_KEY = 'kit.sessionID';
const ROOMS_KEY = 'kit.rooms';
// Per tab, so that a reload reopens the conversation that was open.
const SELECTED_KEY = 'kit.selected';
const ACK_TIMEOUT_MS = 10_000;
// The most messages the server answers per page (services/chat/store.ts): a shorter page is the last.
const PAGE = 50;
// The server's rule (services/chat/validate.ts): letters, digits, space, _ . -, not starting
// with a space, at most 64 characters.
const ROOM_NAME = /^[\p{L}\p{N}_.-][\p{L}\p{N} _.-]{0,63}$/u;

const $ = (selector) => {
  const element = document.querySelector(selector);
  if (!element) throw new Error(`missing ${selector}`);
  return element;
};

const view = {
  connection: $('[data-testid=connection-state]'),
  me: $('#me'),
  login: $('#login'),
  usernameForm: $('#username-form'),
  loginError: $('[data-testid=login-error]'),
  chat: $('#chat'),
  users: $('[data-testid=user-list]'),
  roomForm: $('#room-form'),
  rooms: $('[data-testid=room-list]'),
  title: $('#conversation-title'),
  leave: $('#leave-room'),
  conversation: $('[data-testid=conversation]'),
  messageForm: $('#message-form'),
  chatError: $('[data-testid=chat-error]'),
};

/** @typedef {{ id: string, content: string, from: string, ts: number | string }} Message */

const state = {
  /** @type {{ userID: string, username: string, node: string } | null} */
  me: null,
  // `fetched`: the latest page was asked for on this connection (`users` carries messages for the
  // most recent conversations only). `complete`: the oldest message is known, no page is left.
  /** @type {Map<string, { userID: string, username: string, connected: boolean, messages: Message[], unread: number, fetched: boolean, complete: boolean }>} */
  users: new Map(),
  usersLoaded: false,
  /** @type {Map<string, { messages: Message[], unread: number, loaded: boolean, complete: boolean }>} */
  rooms: new Map(),
  /** @type {{ kind: 'user' | 'room', id: string } | null} */
  selected: readSelected(),
};

const socket = window.io({ autoConnect: false });

// ── storage ──────────────────────────────────────────────────────────────────────────────────

function readSelected() {
  try {
    const selected = JSON.parse(sessionStorage.getItem(SELECTED_KEY) ?? 'null');
    if (selected && (selected.kind === 'user' || selected.kind === 'room')) return selected;
  } catch {}
  return null;
}

function storedRooms() {
  try {
    const rooms = JSON.parse(localStorage.getItem(ROOMS_KEY) ?? '[]');
    return Array.isArray(rooms)
      ? rooms.filter((r) => typeof r === 'string' && ROOM_NAME.test(r))
      : [];
  } catch {
    return [];
  }
}

function saveRooms() {
  localStorage.setItem(ROOMS_KEY, JSON.stringify([...state.rooms.keys()]));
}

// ── messages ─────────────────────────────────────────────────────────────────────────────────

const time = (message) => new Date(message.ts).getTime() || 0;

/** Merges incoming into known, by id, oldest first; returns the merged list and what was new. */
function merge(known, incoming) {
  const byId = new Map(known.map((m) => [m.id, m]));
  const added = [];
  for (const message of incoming) {
    if (byId.has(message.id)) continue;
    byId.set(message.id, message);
    added.push(message);
  }
  const messages = added.length === 0 ? known : [...byId.values()];
  if (added.length > 0) {
    messages.sort((a, b) => time(a) - time(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
  return { messages, added };
}

const entryOf = (target) =>
  target?.kind === 'user' ? state.users.get(target.id) : state.rooms.get(target?.id ?? '');
const isSelected = (kind, id) => state.selected?.kind === kind && state.selected.id === id;
const fromOthers = (messages) => messages.filter((m) => m.from !== state.me?.userID).length;
const nameOf = (userID) => state.users.get(userID)?.username ?? userID;

function userEntry(userID, username = userID) {
  let user = state.users.get(userID);
  if (!user) {
    user = {
      userID,
      username,
      connected: false,
      messages: [],
      unread: 0,
      fetched: false,
      complete: false,
    };
    state.users.set(userID, user);
  }
  return user;
}

function addPrivate(incoming) {
  const other = incoming.from === state.me?.userID ? incoming.to : incoming.from;
  const user = userEntry(other);
  const { messages, added } = merge(user.messages, [incoming]);
  user.messages = messages;
  if (added.length === 0) return;
  if (isSelected('user', other)) renderConversation();
  else user.unread += fromOthers(added);
  renderUsers();
}

/** Older messages of a conversation, asked for by this page: never unread. */
function addOlder(target, incoming) {
  const entry = entryOf(target);
  if (!entry) return;
  entry.messages = merge(entry.messages, incoming).messages;
  // In full: the control is drawn again, or goes once the oldest message is known.
  if (isSelected(target.kind, target.id)) renderConversation({ full: true, keepPlace: true });
}

function addRoomMessages(room, incoming, countUnread) {
  const entry = state.rooms.get(room);
  if (!entry) return;
  const { messages, added } = merge(entry.messages, incoming);
  entry.messages = messages;
  if (added.length === 0) return;
  if (isSelected('room', room)) renderConversation();
  else if (countUnread) entry.unread += fromOthers(added);
  renderRooms();
}

// ── rendering ────────────────────────────────────────────────────────────────────────────────

function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') element.textContent = value;
    else if (key === 'className') element.className = value;
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(key, value);
  }
  element.append(...children.filter(Boolean));
  return element;
}

function unreadBadge(count) {
  if (count === 0) return null;
  return el('span', {
    className: 'unread',
    'data-testid': 'unread',
    'aria-label': `${count} unread`,
    text: count > 99 ? '99+' : String(count),
  });
}

function renderUsers() {
  const me = state.me?.userID;
  const users = [...state.users.values()].sort(
    (a, b) =>
      Number(b.userID === me) - Number(a.userID === me) ||
      Number(b.connected) - Number(a.connected) ||
      a.username.localeCompare(b.username),
  );
  view.users.replaceChildren(
    ...users.map((user) => {
      const online = user.userID === me ? socket.connected : user.connected;
      const button = el(
        'button',
        { type: 'button', className: 'entry' },
        el('span', {
          className: `presence ${online ? 'online' : 'offline'}`,
          'aria-hidden': 'true',
        }),
        el('span', { className: 'name', text: user.username }),
        user.userID === me ? el('span', { className: 'you', text: '(you)' }) : null,
        el('span', {
          className: 'state',
          'data-testid': 'status',
          text: online ? 'online' : 'offline',
        }),
        unreadBadge(user.unread),
      );
      if (isSelected('user', user.userID)) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => select({ kind: 'user', id: user.userID }));
      return el('li', { 'data-testid': 'user', dataset: { userId: user.userID } }, button);
    }),
  );
}

function renderRooms() {
  const rooms = [...state.rooms.entries()].sort(([a], [b]) => a.localeCompare(b));
  view.rooms.replaceChildren(
    ...rooms.map(([room, entry]) => {
      const button = el(
        'button',
        { type: 'button', className: 'entry' },
        el('span', { className: 'hash', text: '#', 'aria-hidden': 'true' }),
        el('span', { className: 'name', text: room }),
        unreadBadge(entry.unread),
      );
      if (isSelected('room', room)) button.setAttribute('aria-current', 'true');
      button.addEventListener('click', () => select({ kind: 'room', id: room }));
      return el('li', { 'data-testid': 'room', dataset: { room } }, button);
    }),
  );
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dated = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const stamp = (when) =>
  (when.toDateString() === new Date().toDateString() ? clock : dated).format(when);

function renderMessage(message) {
  const mine = message.from === state.me?.userID;
  const when = new Date(message.ts);
  const valid = !Number.isNaN(when.getTime());
  return el(
    'li',
    { className: mine ? 'message mine' : 'message', dataset: { id: message.id } },
    el(
      'div',
      { className: 'meta' },
      el('span', { className: 'author', text: mine ? 'you' : nameOf(message.from) }),
      valid ? el('time', { datetime: when.toISOString(), text: stamp(when) }) : null,
    ),
    el('p', { className: 'text', 'data-testid': 'message', text: message.content }),
  );
}

function currentConversation() {
  const selected = state.selected;
  if (selected?.kind === 'user') {
    const user = state.users.get(selected.id);
    if (user)
      return {
        title: user.userID === state.me?.userID ? `${user.username} (you)` : user.username,
        messages: user.messages,
      };
  }
  if (selected?.kind === 'room') {
    const room = state.rooms.get(selected.id);
    if (room) return { title: `# ${selected.id}`, messages: room.messages };
  }
  return null;
}

/** The control at the top of a conversation that asks for the page before its oldest message. */
function olderControl() {
  const target = state.selected;
  const entry = entryOf(target);
  if (!entry || entry.complete || entry.messages.length === 0) return null;
  if (target.kind === 'user' && !entry.fetched) return null;
  if (target.kind === 'room' && !entry.loaded) return null;
  const button = el('button', {
    type: 'button',
    className: 'secondary',
    'data-testid': 'older',
    text: 'Older messages',
  });
  button.addEventListener('click', async () => {
    button.disabled = true;
    button.textContent = 'Loading…';
    const error = await loadOlder(target);
    if (error) {
      showError(view.chatError, `Could not load older messages: ${error}`);
      button.disabled = false;
      button.textContent = 'Older messages';
    }
  });
  return el('li', { className: 'older' }, button);
}

/** Appends what is new when only that changed, so that a screen reader announces only it;
 * otherwise (another conversation, or `full`) draws the conversation again. `keepPlace` keeps
 * the messages in view where they were when older ones are drawn above them. */
function renderConversation({ toEnd = false, full = false, keepPlace = false } = {}) {
  const current = currentConversation();
  const list = view.conversation;
  const key = current ? `${state.selected.kind}:${state.selected.id}` : '';
  const messages = current?.messages ?? [];
  const atBottom = toEnd || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const fromBottom = list.scrollHeight - list.scrollTop;
  view.title.textContent = current?.title ?? 'Pick someone to talk to, or join a room';
  view.leave.hidden = state.selected?.kind !== 'room' || !current;
  const shown =
    list.dataset.key === key && !full
      ? [...list.querySelectorAll(':scope > .message')].map((item) => item.dataset.id)
      : null;
  if (shown?.every((id, i) => messages[i]?.id === id)) {
    if (messages.length > shown.length) {
      list.querySelector(':scope > .empty')?.remove();
      list.append(...messages.slice(shown.length).map(renderMessage));
    }
  } else {
    list.replaceChildren(olderControl() ?? '', ...messages.map(renderMessage));
    if (current && messages.length === 0) {
      const loading = state.selected.kind === 'user' && !entryOf(state.selected)?.fetched;
      list.append(
        el('li', { className: 'empty', text: loading ? 'Loading…' : 'No messages yet.' }),
      );
    }
  }
  list.dataset.key = key;
  if (atBottom) list.scrollTop = list.scrollHeight;
  else if (keepPlace) list.scrollTop = list.scrollHeight - fromBottom;
  setComposerEnabled(Boolean(current));
}

function setComposerEnabled(enabled) {
  for (const control of view.messageForm.elements) control.disabled = !enabled;
}

function select(selected) {
  state.selected = selected;
  if (selected) sessionStorage.setItem(SELECTED_KEY, JSON.stringify(selected));
  else sessionStorage.removeItem(SELECTED_KEY);
  if (selected?.kind === 'user') {
    const user = state.users.get(selected.id);
    if (user) user.unread = 0;
  } else if (selected?.kind === 'room') {
    const room = state.rooms.get(selected.id);
    if (room) room.unread = 0;
  }
  renderUsers();
  renderRooms();
  renderConversation({ toEnd: true });
  if (selected) view.messageForm.elements.content.focus();
  if (selected?.kind === 'user') fetchLatest(selected.id);
}

function forgetSession() {
  localStorage.removeItem(SESSION_KEY);
  localStorage.removeItem(ROOMS_KEY);
  sessionStorage.removeItem(SELECTED_KEY);
  socket.auth = {};
  state.me = null;
  state.users.clear();
  state.usersLoaded = false;
  state.rooms.clear();
  state.selected = null;
}

function showError(target, message) {
  target.textContent = message ?? '';
  target.hidden = !message;
}

function setConnection(kind, text) {
  view.connection.dataset.state = kind;
  view.connection.textContent = text;
  if (state.me) renderUsers();
}

function showLogin(error) {
  view.chat.hidden = true;
  view.me.hidden = true;
  view.login.hidden = false;
  showError(view.loginError, error);
  view.usernameForm.elements.username.focus();
}

function showChat() {
  view.login.hidden = true;
  view.chat.hidden = false;
  view.me.hidden = false;
  view.me.textContent = state.me?.username ?? '';
}

// ── server round trips ───────────────────────────────────────────────────────────────────────

/** Emits with an acknowledgement; resolves with the ack, or with { error } on a timeout. */
async function request(event, payload) {
  try {
    return (await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload)) ?? {};
  } catch {
    return { error: 'no answer from the server, try again' };
  }
}

/** The latest page of a private conversation, once per connection: `users` carries messages for
 * the most recent conversations only, and may have missed some while disconnected. */
async function fetchLatest(userID) {
  const user = state.users.get(userID);
  if (!user || user.fetched || !socket.connected) return;
  user.fetched = true;
  const answer = await request('messages', { with: userID });
  if (!answer.ok) {
    user.fetched = false;
    if (isSelected('user', userID)) {
      showError(view.chatError, `Could not load the conversation: ${answer.error ?? 'no answer'}`);
      renderConversation({ full: true });
    }
    return;
  }
  const page = answer.messages ?? [];
  if (page.length < PAGE) user.complete = true;
  const { messages, added } = merge(user.messages, page);
  user.messages = messages;
  // Drawn again only when it shows something new: messages, the older-messages control, or that
  // the conversation is empty rather than loading.
  const due = added.length > 0 || !user.complete || messages.length === 0;
  if (due && isSelected('user', userID)) renderConversation({ full: true });
}

/** The page before the oldest message shown; resolves with an error message or null. */
async function loadOlder(target) {
  const oldest = entryOf(target)?.messages[0]?.id;
  const answer =
    target.kind === 'user'
      ? await request('messages', { with: target.id, before: oldest })
      : await request('room history', { room: target.id, before: oldest });
  if (!answer.ok) return answer.error ?? 'no answer';
  const page = (target.kind === 'user' ? answer.messages : answer.history) ?? [];
  const entry = entryOf(target);
  if (entry && page.length < PAGE) entry.complete = true;
  addOlder(target, page);
  return null;
}

async function joinRoom(room, { countUnread }) {
  const answer = await request('join', room);
  if (answer.error || !answer.ok) {
    if (!state.rooms.get(room)?.loaded) {
      state.rooms.delete(room);
      saveRooms();
      if (isSelected('room', room)) select(null);
      renderRooms();
    }
    return answer.error ?? 'could not join';
  }
  const entry = state.rooms.get(room);
  if (!entry) return null; // left while the join was in flight
  const history = answer.history ?? [];
  if (history.length < PAGE) entry.complete = true;
  const first = !entry.loaded;
  entry.loaded = true;
  addRoomMessages(room, history, countUnread && !first);
  // The older-messages control waits for the first history.
  if (first && isSelected('room', room)) renderConversation({ full: true });
  return null;
}

// ── socket events ────────────────────────────────────────────────────────────────────────────

let connects = 0;

socket.on('connect', () => {
  connects += 1;
  setConnection('connected', 'connected');
  // Recovered (the kit runs ADAPTER=redis-streams and the client was back in time): the socket
  // kept its rooms and was sent every event it missed. Nothing to ask again.
  if (socket.recovered) return;
  // Otherwise the server forgot the socket's rooms with it: join them again, merging their
  // history so that nothing sent while disconnected is missing.
  for (const room of state.rooms.keys()) {
    joinRoom(room, { countUnread: connects > 1 }).then((error) => {
      if (error) showError(view.chatError, `Could not rejoin #${room}: ${error}`);
    });
  }
});

socket.on('session', ({ sessionID, userID, username, node }) => {
  localStorage.setItem(SESSION_KEY, sessionID);
  socket.auth = { sessionID };
  state.me = { userID, username, node };
  setConnection('connected', `connected · ${node}`);
  userEntry(userID, username).connected = true;
  showChat();
  renderUsers();
  renderRooms();
  renderConversation();
});

socket.on('connect_error', (error) => {
  if (error.message === 'invalid username') {
    const resumed = Boolean(socket.auth?.sessionID);
    forgetSession();
    setConnection('idle', 'not connected');
    showLogin(
      resumed
        ? 'Your session has ended. Pick a username to start a new one.'
        : 'Pick a username of 1 to 32 characters.',
    );
    return;
  }
  // socket.active: the manager tries again by itself (a network error, not a refusal).
  if (socket.active) return;
  if (error.message === 'storage unavailable' || error.message === 'storage full') {
    // The server is up but its Redis is away or full: a refusal that passes. Try again shortly.
    setConnection('reconnecting', `reconnecting… (server ${error.message})`);
    setTimeout(() => socket.connect(), 2000 + Math.random() * 2000);
    return;
  }
  setConnection('disconnected', 'disconnected');
  if (state.me) showError(view.chatError, `Could not connect: ${error.message}`);
  else showLogin(`Could not connect: ${error.message}`);
});

socket.on('disconnect', () => {
  setConnection(
    socket.active ? 'reconnecting' : 'disconnected',
    socket.active ? 'reconnecting…' : 'disconnected',
  );
});

socket.io.on('reconnect_attempt', (attempt) => {
  setConnection('reconnecting', `reconnecting… (attempt ${attempt})`);
});

socket.io.on('reconnect_failed', () => {
  setConnection('disconnected', 'disconnected');
});

socket.on('users', (users) => {
  const countUnread = state.usersLoaded;
  for (const incoming of users) {
    const user = userEntry(incoming.userID, incoming.username);
    user.username = incoming.username;
    user.connected = incoming.connected;
    const { messages, added } = merge(user.messages, incoming.messages ?? []);
    user.messages = messages;
    if (countUnread && !isSelected('user', user.userID)) user.unread += fromOthers(added);
  }
  // A new connection: what was missed while away is asked for again when a conversation opens.
  for (const user of state.users.values()) user.fetched = false;
  state.usersLoaded = true;
  if (state.selected?.kind === 'user' && !state.users.has(state.selected.id)) select(null);
  renderUsers();
  // Authors are shown by name, and names may have arrived with this list.
  renderConversation({ full: true });
  if (state.selected?.kind === 'user') fetchLatest(state.selected.id);
});

socket.on('user connected', ({ userID, username }) => {
  const renamed = state.users.get(userID)?.username !== username;
  const user = userEntry(userID, username);
  user.username = username;
  user.connected = true;
  renderUsers();
  if (renamed && state.selected?.kind === 'room') renderConversation({ full: true });
});

socket.on('user disconnected', (userID) => {
  const user = state.users.get(userID);
  if (!user) return;
  user.connected = false;
  renderUsers();
});

socket.on('private message', addPrivate);

socket.on('room message', (message) => addRoomMessages(message.room, [message], true));

// ── forms ────────────────────────────────────────────────────────────────────────────────────

view.usernameForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const username = view.usernameForm.elements.username.value.trim();
  if (username.length < 1 || username.length > 32) {
    showError(view.loginError, 'Pick a username of 1 to 32 characters.');
    return;
  }
  showError(view.loginError, null);
  socket.auth = { username };
  setConnection('connecting', 'connecting…');
  socket.connect();
});

view.messageForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = view.messageForm.elements.content;
  const content = input.value;
  const target = state.selected;
  if (!target || content.trim() === '') return;
  showError(view.chatError, null);
  input.value = '';
  const answer =
    target.kind === 'user'
      ? await request('private message', { content, to: target.id })
      : await request('room message', { room: target.id, content });
  if (answer.ok && answer.message) {
    if (target.kind === 'user') addPrivate(answer.message);
    else addRoomMessages(target.id, [answer.message], false);
    return;
  }
  showError(view.chatError, `Not sent: ${answer.error ?? 'unknown error'}`);
  if (input.value === '') input.value = content;
});

view.roomForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = view.roomForm.elements.room;
  const room = input.value.trim();
  if (!ROOM_NAME.test(room)) {
    showError(view.chatError, 'A room name has 1 to 64 letters, digits, spaces, _ . or -');
    return;
  }
  showError(view.chatError, null);
  input.value = '';
  if (!state.rooms.has(room)) {
    state.rooms.set(room, { messages: [], unread: 0, loaded: false, complete: false });
    saveRooms();
    renderRooms();
  }
  select({ kind: 'room', id: room });
  const error = await joinRoom(room, { countUnread: false });
  if (error) showError(view.chatError, `Could not join #${room}: ${error}`);
});

view.leave.addEventListener('click', async () => {
  if (state.selected?.kind !== 'room') return;
  const room = state.selected.id;
  const answer = await request('leave', room);
  if (answer.error) {
    showError(view.chatError, `Could not leave #${room}: ${answer.error}`);
    return;
  }
  state.rooms.delete(room);
  saveRooms();
  if (isSelected('room', room)) select(null);
  renderRooms();
});

// ── start ────────────────────────────────────────────────────────────────────────────────────

for (const room of storedRooms()) {
  state.rooms.set(room, { messages: [], unread: 0, loaded: false, complete: false });
}

const sessionID = localStorage.getItem(SESSION_KEY);
if (sessionID) {
  socket.auth = { sessionID };
  setConnection('connecting', 'connecting…');
  socket.connect();
} else {
  showLogin(null);
}
