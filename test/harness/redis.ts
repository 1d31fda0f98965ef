// A real redis-server owned by a test, for faults the test controls (kill it, start it again).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisAnswers } from '../../scripts/kit/probes.ts';
import { freePorts, waitFor } from './kit.ts';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  start(): Promise<void>;
  kill(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function testRedis(password = 'test-redis-password'): Promise<TestRedis> {
  const [port] = (await freePorts(1)) as [number];
  const dir = mkdtempSync(join(tmpdir(), 'kit-redis-'));
  const url = `redis://:${password}@127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const kill = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child?.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  return {
    url,
    port,
    async start() {
      child = spawn(
        '/usr/bin/redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--requirepass',
          password,
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--save',
          '',
        ],
        { stdio: 'ignore' },
      );
      await waitFor('test redis to answer', () => redisAnswers(url, 500), 10_000);
    },
    kill,
    async cleanup() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
