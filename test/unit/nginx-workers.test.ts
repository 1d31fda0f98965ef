// NGINX_WORKERS=auto: enough workers to hold 50,000 connections under the open-files limit, at
// least one per core, and a clear refusal where the limit leaves nginx nothing to proxy with.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { AUTO_CONNECTIONS, autoWorkers } from '../../scripts/kit/render-nginx.ts';
import { KitError } from '../../services/node/errors.ts';

it('sizes nginx for 50,000 connections under a 20,000 open-files limit: 6 workers on 2 cores', () => {
  const workers = autoWorkers(20_000, 2);
  assert.equal(workers, 6);
  // Each proxied connection holds two descriptors; 200 stay back for logs and listeners.
  assert.ok(workers * Math.floor((20_000 - 200) / 2) >= AUTO_CONNECTIONS);
  assert.ok((workers - 1) * Math.floor((20_000 - 200) / 2) < AUTO_CONNECTIONS);
  assert.equal(autoWorkers(65_536, 2), 2, 'a high limit needs no more than one per core');
});

it('takes one worker per core where the limit alone would need fewer', () => {
  assert.equal(autoWorkers(20_000, 8), 8);
  assert.equal(autoWorkers(20_000, 1), 6);
  assert.equal(autoWorkers(65_536, 32), 32, 'a large host keeps one per core');
  assert.equal(autoWorkers(1024, 32), 32);
});

it('asks for at most 16 workers under a low limit, and refuses a limit that leaves none', () => {
  assert.equal(autoWorkers(1024, 2), 16);
  assert.equal(autoWorkers(300, 2), 16);
  assert.throws(
    () => autoWorkers(299, 2),
    (error: unknown) =>
      error instanceof KitError && error.code === 'KIT_ERR_CONFIG' && /299/.test(error.message),
  );
});
