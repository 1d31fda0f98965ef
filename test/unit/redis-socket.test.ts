// The nodes reach the kit's own Redis over its Unix socket where the path fits Linux's 107 bytes,
// and over its loopback port where RUN_DIR is too deep for one.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RedisClient } from '@redis/client';
import { loadKitConfig } from '../../scripts/kit/config.ts';
import {
  describeOwnRedisWay,
  ownRedisNodeUrl,
  ownRedisSocket,
  ownRedisUrl,
  writeRedisConf,
} from '../../scripts/kit/redis-server.ts';
import { prepareRunDir, type RunDir, runDir } from '../../scripts/kit/run-dir.ts';
import { handOver, loadNodeConfig } from '../../services/node/config.ts';
import { aNodeConfig } from '../harness/node-config.ts';

describe("the way from the nodes to the kit's own Redis", () => {
  const root = mkdtempSync(join(tmpdir(), 'kit-redis-socket-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  const kitAt = (runDirPath: string) => {
    const config = loadKitConfig({ RUN_DIR: runDirPath });
    const dir = runDir(config.runDir);
    prepareRunDir(dir);
    const conf = readFileSync(writeRedisConf(config, dir), 'utf8');
    return { config, dir, conf };
  };

  it('is its Unix socket, which only its own user may open, password and all', () => {
    const { config, dir, conf } = kitAt(join(root, 'run'));
    const socket = join(dir.redis, 'redis.sock');
    assert.ok(conf.split('\n').includes(`unixsocket ${socket}`), conf);
    assert.match(conf, /^unixsocketperm 700$/m);
    const url = ownRedisNodeUrl(config, dir);
    const password = readFileSync(join(dir.redis, 'password'), 'utf8').trim();
    assert.equal(url, `unix://:${encodeURIComponent(password)}@${socket}`);
    assert.equal(describeOwnRedisWay(config, dir), `the nodes reach it over ${socket}`);
    // The node takes it as handed over.
    assert.equal(loadNodeConfig(handOver(aNodeConfig({ redisUrl: url }))).redisUrl, url);
  });

  it('names its socket right whatever characters RUN_DIR may have', () => {
    const { config, dir } = kitAt(join(root, 'a@b%20c:d+e=f,g'));
    const parsed = RedisClient.parseURL(ownRedisNodeUrl(config, dir));
    assert.equal((parsed.socket as { path?: string }).path, join(dir.redis, 'redis.sock'));
    assert.equal(parsed.password, readFileSync(join(dir.redis, 'password'), 'utf8').trim());
  });

  it('is its port where the socket path would pass 107 bytes', () => {
    const { config, dir, conf } = kitAt(join(root, 'd'.repeat(100), 'run'));
    assert.doesNotMatch(conf, /unixsocket/);
    assert.equal(ownRedisNodeUrl(config, dir), ownRedisUrl(config, dir));
    // up.sh's summary says so.
    assert.match(describeOwnRedisWay(config, dir), /on port 6380: its socket's path would pass/);
  });

  it('counts the bytes of the path, not its characters', () => {
    // RUN_DIR itself is ASCII, but a relative one sits under a checkout whose path need not be.
    const base = join(root, 'é'.repeat(10));
    const path = (dir: RunDir) => join(dir.redis, 'redis.sock');
    /** RUN_DIR one folder deeper than `base`, its name `n` letters long. */
    const at = (n: number) => runDir(join(base, 'r'.repeat(n)));
    const chars = 107 - path(at(0)).length - 1; // 107 characters, 117 bytes
    assert.equal(path(at(chars)).length, 107);
    assert.equal(ownRedisSocket(at(chars)), undefined, 'a path of 117 bytes was taken');
    const fits = 107 - Buffer.byteLength(path(at(0))) - 1; // 107 bytes
    assert.equal(ownRedisSocket(at(fits)), path(at(fits)));
    assert.equal(ownRedisSocket(at(fits + 1)), undefined);
  });
});
