// The kit's own Redis has a memory limit (REDIS_MAXMEMORY) and refuses writes when full instead of
// evicting stored sessions and messages (noeviction).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { type Kit, kitRedis, launchKit } from '../harness/kit.ts';

let kit: Kit;
before(async () => {
  kit = await launchKit({ nodes: 1, env: { REDIS_MAXMEMORY: '64mb' } });
});
after(async () => kit?.stop());

it('writes maxmemory and noeviction into redis.conf, and Redis runs with them', async () => {
  const conf = readFileSync(join(kit.runDir, 'redis', 'redis.conf'), 'utf8');
  assert.match(conf, /^maxmemory 64mb$/m);
  assert.match(conf, /^maxmemory-policy noeviction$/m);

  const redis = await kitRedis(kit);
  try {
    const config = { ...(await redis.configGet('maxmemory*')) };
    assert.equal(config.maxmemory, String(64 * 2 ** 20));
    assert.equal(config['maxmemory-policy'], 'noeviction');
  } finally {
    await redis.quit();
  }
});
