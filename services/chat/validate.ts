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

export function username(value: unknown): Checked<string> {
  if (typeof value !== 'string') return fail('invalid username');
  const trimmed = value.trim();
  if (trimmed.length < 1 || trimmed.length > LIMITS.username) return fail('invalid username');
  return { ok: true, value: trimmed };
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

export function privateMessage(value: unknown): Checked<{ content: string; to: string }> {
  if (!isRecord(value)) return fail('expected { content, to }');
  const text = content(value.content);
  if (!text.ok) return text;
  if (typeof value.to !== 'string' || value.to.length < 1 || value.to.length > LIMITS.id) {
    return fail('to must be a userID');
  }
  return { ok: true, value: { content: text.value, to: value.to } };
}

export function roomMessage(value: unknown): Checked<{ room: string; content: string }> {
  if (!isRecord(value)) return fail('expected { room, content }');
  const name = room(value.room);
  if (!name.ok) return name;
  const text = content(value.content);
  if (!text.ok) return text;
  return { ok: true, value: { room: name.value, content: text.value } };
}
