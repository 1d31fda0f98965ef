import { createHash } from 'node:crypto';
import type { Redis } from '../node/redis.ts';

/**
 * A Lua script sent by its SHA1, and in full only when Redis does not know it yet (after a
 * restart, say). The client's own `scripts` option would need the kit to create it for the chat.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: Array<string | number>): Promise<unknown> {
    const options = { keys, arguments: args.map(String) };
    try {
      return await redis.evalSha(this.sha, options);
    } catch (error) {
      if (!(error as Error).message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.source, options);
    }
  }
}
