// Every client payload is checked here before it touches Redis or another socket. A check
// returns the clean value or an error message for the acknowledgement; it never throws.
export const LIMITS = {
  username: 32,
  content: 2000,
  room: 64,
  id: 64,
} as const;

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Control (Cc) and format (Cf) characters let a name look like another one or reorder the text
// around it: bidi overrides (U+202E), zero-width joiners and spaces (U+200B, U+200D, U+FEFF).
const INVISIBLE = /[\p{Cc}\p{Cf}]/u;

export function username(value: unknown): Checked<string> {
  if (typeof value !== 'string') return fail('invalid username');
  // Tested before trimming, which would quietly drop a U+FEFF at either end.
  if (INVISIBLE.test(value)) return fail('invalid username');
  const name = value.normalize('NFC').trim();
  if (name.length < 1 || name.length > LIMITS.username) return fail('invalid username');
  return { ok: true, value: name };
}

function content(value: unknown): Checked<string> {
  if (typeof value !== 'string') return fail('content must be a string');
  if (value.trim().length === 0) return fail('content is empty');
  if (value.length > LIMITS.content)
    return fail(`content is longer than ${LIMITS.content} characters`);
  return { ok: true, value };
}

// Letters, digits, space, _ . - : readable in a URL or a list, and never mistaken for a userID
// room or a socket id room, because chat rooms live under their own prefix (see index.ts).
const ROOM_NAME = /^[\p{L}\p{N}_.-][\p{L}\p{N} _.-]*$/u;

export function room(value: unknown): Checked<string> {
  if (typeof value !== 'string') return fail('room must be a string');
  const trimmed = value.trim();
  if (trimmed.length < 1 || trimmed.length > LIMITS.room) {
    return fail(`room must be 1 to ${LIMITS.room} characters`);
  }
  if (!ROOM_NAME.test(trimmed)) return fail('room may hold letters, digits, space, _ . - only');
  return { ok: true, value: trimmed };
}

function id(value: unknown, what: string): Checked<string> {
  if (typeof value !== 'string' || value.length < 1 || value.length > LIMITS.id) {
    return fail(`${what} must be an id of 1 to ${LIMITS.id} characters`);
  }
  return { ok: true, value };
}

/** `before` is optional: absent means the newest page. */
function before(value: unknown): Checked<string | undefined> {
  return value === undefined || value === null
    ? { ok: true, value: undefined }
    : id(value, 'before');
}

export function privateMessagesPage(
  value: unknown,
): Checked<{ with: string; before: string | undefined }> {
  if (!isRecord(value)) return fail('expected { with, before? }');
  const other = id(value.with, 'with');
  if (!other.ok) return other;
  const older = before(value.before);
  if (!older.ok) return older;
  return { ok: true, value: { with: other.value, before: older.value } };
}

export function roomHistoryPage(
  value: unknown,
): Checked<{ room: string; before: string | undefined }> {
  if (!isRecord(value)) return fail('expected { room, before? }');
  const name = room(value.room);
  if (!name.ok) return name;
  const older = before(value.before);
  if (!older.ok) return older;
  return { ok: true, value: { room: name.value, before: older.value } };
}

export function privateMessage(value: unknown): Checked<{ content: string; to: string }> {
  if (!isRecord(value)) return fail('expected { content, to }');
  const text = content(value.content);
  if (!text.ok) return text;
  const to = id(value.to, 'to');
  if (!to.ok) return to;
  return { ok: true, value: { content: text.value, to: to.value } };
}

export function roomMessage(value: unknown): Checked<{ room: string; content: string }> {
  if (!isRecord(value)) return fail('expected { room, content }');
  const name = room(value.room);
  if (!name.ok) return name;
  const text = content(value.content);
  if (!text.ok) return text;
  return { ok: true, value: { room: name.value, content: text.value } };
}
