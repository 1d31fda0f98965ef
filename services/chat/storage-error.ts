/**
 * What to tell a client when Redis failed. With `maxmemory` and `noeviction` Redis refuses writes
 * with an OOM error; inside MULTI that error comes back as EXECABORT, which nothing else the chat
 * queues can cause (its commands are well-formed).
 */
export function storageError(error: unknown): 'storage full' | 'storage unavailable' {
  const message = error instanceof Error ? error.message : '';
  return message.startsWith('OOM') || message.startsWith('EXECABORT')
    ? 'storage full'
    : 'storage unavailable';
}

/** How long a handshake waits for Redis before refusing with `storage unavailable`. */
export const STORAGE_DEADLINE_MS = 3000;

/**
 * `work`, or a rejection after `ms`: a command sent to a Redis node that vanished without a word
 * (its host lost) may wait until the client notices (up to 4 s, services/node/redis.ts) or, in a
 * cluster changing its topology, longer; a handshake must not hang on it but be refused, and
 * the client tries again.
 */
export function inTime<T>(work: Promise<T>, ms = STORAGE_DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
