import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  ConfigError,
  loadKitConfig,
  loadNodeConfig,
  OPTIONS,
  readEnv,
} from '../../services/node/config.ts';

const culprit = (variable: string, pattern: RegExp) => (error: unknown) =>
  error instanceof ConfigError && error.variable === variable && pattern.test(error.message);

describe('kit configuration', () => {
  it('has the contract defaults', () => {
    const config = loadKitConfig({});
    assert.equal(config.port, 3000);
    assert.deepEqual(config.nodePorts, [6001, 6002, 6003, 6004]);
    assert.equal(config.redisUrl, undefined);
    assert.match(config.runDir, /\/\.run$/);
    assert.match(config.appModule, /services\/chat\/index\.ts$/);
    assert.ok(Object.isFrozen(config));
    assert.equal(OPTIONS.PORT.default, '3000');
  });

  it('names the variable and the value of every bad setting', () => {
    assert.throws(
      () => loadKitConfig({ PORT: '0' }),
      culprit('PORT', /^PORT="0": port 0 is out of range/),
    );
    assert.throws(() => loadKitConfig({ PORT: '3000x' }), culprit('PORT', /not a port number/));
    assert.throws(
      () => loadKitConfig({ NODE_PORTS: '6001,,6002' }),
      culprit('NODE_PORTS', /empty entry/),
    );
    assert.throws(
      () => loadKitConfig({ NODE_PORTS: '6001,6001' }),
      culprit('NODE_PORTS', /6001 is listed twice/),
    );
    assert.throws(
      () => loadKitConfig({ NODE_PORTS: '6001,99999' }),
      culprit('NODE_PORTS', /99999 is out of range/),
    );
    assert.throws(() => loadKitConfig({ NODE_PORTS: '3000' }), culprit('NODE_PORTS', /also PORT/));
    assert.throws(
      () => loadKitConfig({ REDIS_URL: 'http://x' }),
      culprit('REDIS_URL', /redis:\/\//),
    );
    assert.throws(
      () => loadKitConfig({ APP_MODULE: 'nope.ts' }),
      culprit('APP_MODULE', /no such file/),
    );
    assert.throws(
      () => loadKitConfig({ EMIT_TOKEN: 'short' }),
      culprit('EMIT_TOKEN', /16 characters/),
    );
    assert.throws(
      () => loadKitConfig({ ALLOWED_ORIGINS: 'evil' }),
      culprit('ALLOWED_ORIGINS', /not an origin/),
    );
    assert.throws(() => loadKitConfig({ NGINX_WORKERS: '0' }), culprit('NGINX_WORKERS', /auto/));
    assert.throws(() => loadKitConfig({ LOG_LEVEL: 'loud' }), culprit('LOG_LEVEL', /one of/));
  });

  it('reads a .env file at the root, and the environment wins over it', () => {
    const root = mkdtempSync(join(tmpdir(), 'kit-env-'));
    try {
      writeFileSync(join(root, '.env'), 'PORT=4000\nNODE_PORTS=7001,7002\n# a comment\n');
      const env = readEnv({ NODE_PORTS: '8001' }, root);
      assert.equal(env.PORT, '4000');
      assert.equal(env.NODE_PORTS, '8001');
      assert.equal(loadKitConfig(env).port, 4000);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('treats an empty value as unset', () => {
    assert.equal(loadKitConfig({ PORT: '' }).port, 3000);
  });

  it('reads a node configuration handed over by the supervisor', () => {
    assert.throws(() => loadNodeConfig({}), culprit('KIT_NODE_ID', /missing/));
    const node = loadNodeConfig({
      KIT_NODE_ID: 'node-6001',
      KIT_NODE_PORT: '6001',
      KIT_REDIS_URL: 'redis://127.0.0.1:6380',
      KIT_EMIT_TOKEN: 'x'.repeat(32),
      KIT_ADMIN_PASSWORD_HASH: '$2a$10$abcdefghijklmnopqrstuv',
    });
    assert.equal(node.port, 6001);
    assert.equal(node.nodeId, 'node-6001');
  });
});
