// The Admin UI's password check. admin-ui's own basic auth runs bcryptjs (pure JavaScript, cost
// 10, ~100 ms of blocked event loop) on every attempt without limit, and never calls `next()`
// when the password is not a string, leaving the socket in the namespace forever (issue 9).
// Here the supervisor hands the node a salted SHA-256 of the password; an attempt costs one hash
// and a constant-time compare, and a connection that fails too often is closed.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const SCHEME = 'sha256';

/** `sha256:<salt>:<digest>`, both base64url: what KIT_ADMIN_PASSWORD_HASH carries. */
export function hashAdminPassword(password: string, salt = randomBytes(16)): string {
  return `${SCHEME}:${salt.toString('base64url')}:${digest(salt, password).toString('base64url')}`;
}

function digest(salt: Buffer, password: string): Buffer {
  return createHash('sha256').update(salt).update(password, 'utf8').digest();
}

/** A checker for one stored hash; throws at start when the hash is not of the kit's form. */
export function passwordChecker(stored: string): (candidate: unknown) => boolean {
  const [scheme, salt, expected] = stored.split(':');
  if (scheme !== SCHEME || !salt || !expected) {
    throw new Error('KIT_ADMIN_PASSWORD_HASH is not of the form sha256:<salt>:<digest>');
  }
  const saltBytes = Buffer.from(salt, 'base64url');
  const expectedBytes = Buffer.from(expected, 'base64url');
  return (candidate) =>
    typeof candidate === 'string' &&
    candidate.length <= 1024 &&
    timingSafeEqual(digest(saltBytes, candidate), expectedBytes);
}
