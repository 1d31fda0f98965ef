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

/**
 * How long a handshake keeps asking Redis before refusing with `storage unavailable`: longer than
 * a Redis Cluster failover with the test's settings (a host lost: its shard's keys refused for
 * about 4 s, test/multihost/ "loses host 1 whole"), shorter than the namespace guard's 10 s.
 */
export const STORAGE_PATIENCE_MS = 8000;
/** Between two attempts. */
const RETRY_AFTER_MS = 250;

/**
 * `work()`, asked again every 250 ms while it fails with Redis unavailable (a shard without a
 * master, a node that just went away), until `ms` have passed; then the last failure. A full Redis
 * (`storage full`) is not waited out. An attempt that hangs (a command sent to a Redis node that
 * vanished without a word, until the client notices, up to 4 s: services/node/redis.ts) counts
 * against the same deadline. Only for work that may run twice: reads, and writes that set.
 *
 * A refused handshake costs the client a pause (the browser tries again after 2 to 4 s); a
 * handshake that waits through a failover does not. What one client holds meanwhile: a socket in
 * the handshake, a timer, one command at a time.
 */
export async function patiently<T>(work: () => Promise<T>, ms = STORAGE_PATIENCE_MS): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await inTime(work(), Math.max(deadline - Date.now(), 1));
    } catch (error) {
      const left = deadline - Date.now();
      if (storageError(error) === 'storage full' || left <= RETRY_AFTER_MS) throw error;
      await new Promise((r) => setTimeout(r, RETRY_AFTER_MS));
    }
  }
}

/** `work`, or a rejection after `ms`. */
function inTime<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
