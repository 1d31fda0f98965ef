import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadKitConfig, OPTIONS, readEnv } from '../../scripts/kit/config.ts';
import { isolatedKitEnv } from '../../scripts/kit/isolated-env.ts';
import {
  ConfigError,
  HANDOVER,
  handOver,
  loadNodeConfig,
  type NodeConfig,
} from '../../services/node/config.ts';
import { heartbeat } from '../../services/node/socket-options.ts';
import { aNodeConfig } from '../harness/node-config.ts';

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

  it('leaves the Admin UI off unless ADMIN_PASSWORD is set, and refuses placeholders', () => {
    assert.equal(loadKitConfig({}).adminPassword, undefined);
    assert.equal(
      loadKitConfig({ ADMIN_PASSWORD: 'Zq7-vR2k!mW9xT' }).adminPassword,
      'Zq7-vR2k!mW9xT',
    );
    assert.throws(
      () => loadKitConfig({ ADMIN_PASSWORD: 'short' }),
      culprit('ADMIN_PASSWORD', /12 characters/),
    );
    assert.throws(
      () => loadKitConfig({ ADMIN_PASSWORD: 'change-me-please' }),
      culprit('ADMIN_PASSWORD', /placeholder/),
    );
    assert.throws(
      () => loadKitConfig({ EMIT_TOKEN: 'aaaaaaaaaaaaaaaaaaaa' }),
      culprit('EMIT_TOKEN', /placeholder/),
    );
  });

  it('takes REDIS_MAXMEMORY as redis.conf does, 512mb by default', () => {
    assert.equal(loadKitConfig({}).redisMaxmemory, '512mb');
    assert.equal(loadKitConfig({ REDIS_MAXMEMORY: '2GB' }).redisMaxmemory, '2gb');
    assert.throws(
      () => loadKitConfig({ REDIS_MAXMEMORY: 'lots' }),
      culprit('REDIS_MAXMEMORY', /at least 8mb/),
    );
    assert.throws(
      () => loadKitConfig({ REDIS_MAXMEMORY: '1mb' }),
      culprit('REDIS_MAXMEMORY', /at least 8mb/),
    );
  });

  it('refuses a RUN_DIR that would read as syntax in nginx.conf or redis.conf', () => {
    for (const runDir of ['/tmp/a b', '/tmp/x;include /etc/passwd', '/tmp/$x', '/tmp/a\nb']) {
      assert.throws(
        () => loadKitConfig({ RUN_DIR: runDir }),
        culprit('RUN_DIR', /letters, digits/),
      );
    }
  });

  it("gives a test's or the bench's kit none of the options of this shell or .env", () => {
    const env = isolatedKitEnv({ RUN_DIR: '/tmp/kit-x' });
    for (const name of Object.keys(OPTIONS)) {
      if (name !== 'RUN_DIR') assert.equal(env[name], '', `${name} must be blanked`);
    }
    const root = mkdtempSync(join(tmpdir(), 'kit-env-'));
    try {
      writeFileSync(join(root, '.env'), 'REDIS_URL=redis://operator:6379\nPORT=3000\n');
      const config = loadKitConfig(readEnv(isolatedKitEnv({ PORT: '41234' }), root));
      assert.equal(config.redisUrl, undefined, 'REDIS_URL from .env leaked in');
      assert.equal(config.port, 41234);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('takes TLS_CERT and TLS_KEY together, readable, and a key that matches', () => {
    assert.equal(loadKitConfig({}).tls, undefined);
    assert.throws(
      () => loadKitConfig({ TLS_CERT: '/etc/hostname' }),
      culprit('TLS_KEY', /is needed with TLS_CERT/),
    );
    assert.throws(
      () => loadKitConfig({ TLS_CERT: '/no/such.pem', TLS_KEY: '/no/such.key' }),
      culprit('TLS_CERT', /cannot be read/),
    );
    assert.throws(
      () => loadKitConfig({ TLS_CERT: '/etc/hostname', TLS_KEY: '/etc/hostname' }),
      culprit('TLS_CERT', /not a PEM certificate/),
    );
  });

  it('refuses a multi-host setting that cannot work, naming it', () => {
    assert.throws(() => loadKitConfig({ KIT_ROLE: 'redis' }), culprit('KIT_ROLE', /"nodes"/));
    assert.throws(() => loadKitConfig({ KIT_ROLE: 'nodes' }), culprit('KIT_ROLE', /REDIS_URL/));
    const cluster = 'redis://:pw@198.18.0.11:7001,redis://:pw@198.18.0.12:7001';
    assert.throws(
      () => loadKitConfig({ KIT_ROLE: 'nodes', REDIS_CLUSTER: cluster }),
      culprit('EMIT_TOKEN', /every nodes host/),
    );
    assert.throws(() => loadKitConfig({ NODE_HOST: 'node-a' }), culprit('NODE_HOST', /IP/));
    assert.throws(
      () => loadKitConfig({ UPSTREAMS: '198.18.0.11:6001,198.18.0.11' }),
      culprit('UPSTREAMS', /not host:port/),
    );
    assert.throws(
      () => loadKitConfig({ UPSTREAMS: '198.18.0.11:6001, 198.18.0.11:6001' }),
      culprit('UPSTREAMS', /twice/),
    );
    assert.throws(
      // nginx would read it as the Unix socket path "6001".
      () => loadKitConfig({ UPSTREAMS: 'unix:6001' }),
      culprit('UPSTREAMS', /socket path/),
    );
    assert.throws(() => loadKitConfig({ BALANCERS: '198.18.0.1,lb' }), culprit('BALANCERS', /lb/));
    assert.throws(
      () => loadKitConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER: cluster }),
      culprit('REDIS_CLUSTER', /exclusive/),
    );
    assert.throws(
      () => loadKitConfig({ REDIS_CLUSTER: 'redis://a:1,http://b:2' }),
      culprit('REDIS_CLUSTER', /scheme/),
    );
    assert.throws(
      () => loadKitConfig({ REDIS_CLUSTER: 'rediss://a:1,rediss://b:2' }),
      culprit('REDIS_CLUSTER', /TLS to a Redis Cluster/),
    );
    assert.throws(
      () => loadKitConfig({ REDIS_CLUSTER: cluster, ADAPTER: 'redis' }),
      culprit('ADAPTER', /redis-sharded/),
    );
    assert.throws(() => loadKitConfig({ ADAPTER: 'ioredis' }), culprit('ADAPTER', /expected/));
  });

  it('reads the roles: a nodes host, a balancer in front of nodes elsewhere', () => {
    const nodes = loadKitConfig({
      KIT_ROLE: 'nodes',
      NODE_HOST: '198.18.0.12',
      REDIS_CLUSTER: 'redis://:pw@198.18.0.11:7001',
      EMIT_TOKEN: 'f3b9c0d1e2a4b5c6d7e8f9a0',
      BALANCERS: '198.18.0.11, 198.18.0.13',
    });
    assert.equal(nodes.role, 'nodes');
    assert.equal(nodes.adapter, 'redis-sharded', 'REDIS_CLUSTER implies the sharded adapter');
    assert.deepEqual(nodes.balancers, ['198.18.0.11', '198.18.0.13']);
    const balancer = loadKitConfig({
      KIT_ROLE: 'balancer',
      UPSTREAMS: '198.18.0.12:6001,[fd00::1]:6002,node-c.internal:6001',
    });
    assert.deepEqual(balancer.upstreams, [
      { host: '198.18.0.12', port: 6001 },
      { host: '[fd00::1]', port: 6002 },
      { host: 'node-c.internal', port: 6001 },
    ]);
    assert.equal(loadKitConfig({}).role, 'all');
    assert.equal(loadKitConfig({}).nodeHost, '127.0.0.1');
  });

  it('takes ADAPTER=redis-streams with its recovery settings, and refuses them without it', () => {
    const streams = loadKitConfig({ ADAPTER: 'redis-streams', RECOVERY_WINDOW: '30' });
    assert.deepEqual(streams.recovery, { windowS: 30, streamMaxLen: 10_000, streamCount: 1 });
    assert.equal(loadKitConfig({}).recovery, undefined);
    assert.throws(
      () => loadKitConfig({ RECOVERY_WINDOW: '30' }),
      culprit('RECOVERY_WINDOW', /needs ADAPTER=redis-streams/),
    );
    assert.equal(
      loadKitConfig({ ADAPTER: 'redis-streams', REDIS_CLUSTER: 'redis://198.18.0.11:7001' })
        .adapter,
      'redis-streams',
    );
    assert.throws(
      () => loadKitConfig({ ADAPTER: 'redis-streams', STREAM_MAXLEN: '10' }),
      culprit('STREAM_MAXLEN', /from 100 to/),
    );
    assert.throws(
      () => loadKitConfig({ ADAPTER: 'redis-streams', STREAM_COUNT: 'two' }),
      culprit('STREAM_COUNT', /whole number/),
    );
    const node = aNodeConfig({
      adapter: 'redis-streams',
      recovery: { windowS: 30, streamMaxLen: 5000, streamCount: 3 },
    });
    assert.deepEqual(loadNodeConfig(handOver(node)), node);
  });

  it('takes HEARTBEAT in whole seconds from 1 to 15, and refuses others by name', () => {
    assert.equal(loadKitConfig({}).heartbeatS, 2);
    assert.equal(loadKitConfig({ HEARTBEAT: '15' }).heartbeatS, 15);
    for (const bad of ['0', '16', '2.5', 'fast'])
      assert.throws(() => loadKitConfig({ HEARTBEAT: bad }), culprit('HEARTBEAT', /./));
    assert.deepEqual(heartbeat(15), { pingInterval: 15_000, pingTimeout: 30_000 });
  });

  it('treats an empty value as unset', () => {
    assert.equal(loadKitConfig({ PORT: '' }).port, 3000);
  });

  it('hands a node its configuration through one table of variables, both ways', () => {
    assert.throws(() => loadNodeConfig({}), culprit('KIT_NODE_ID', /missing/));
    const config: NodeConfig = {
      nodeId: 'node-6001',
      port: 6001,
      host: '198.18.0.11',
      socketPath: '/run/kit/sockets/node-6001.sock',
      balancers: ['198.18.0.21', '198.18.0.22'],
      redisUrl: undefined,
      redisCluster: ['redis://:pw@198.18.0.11:7001', 'redis://:pw@198.18.0.12:7001'],
      adapter: 'redis-sharded',
      recovery: undefined,
      appModule: '/srv/app/index.ts',
      emitToken: 'x'.repeat(32),
      adminPasswordHash: undefined,
      allowedOrigins: ['https://chat.example.com'],
      heartbeatS: 15,
      logLevel: 'warn',
    };
    const env = handOver(config);
    for (const variable of Object.keys(env)) {
      assert.ok(
        Object.values(HANDOVER).includes(variable as never),
        `${variable} is not in HANDOVER`,
      );
    }
    assert.deepEqual(loadNodeConfig(env), config);
    assert.equal(
      env.KIT_ADMIN_PASSWORD_HASH,
      undefined,
      'no hash handed over: the Admin UI is off',
    );
  });
});
