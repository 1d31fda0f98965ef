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
