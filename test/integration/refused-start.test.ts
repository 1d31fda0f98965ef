// up.sh refuses a bad configuration before anything starts, names the culprit, and leaves
// nothing running.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePorts, processesMentioning, runDoor } from '../harness/kit.ts';

async function refused(env: NodeJS.ProcessEnv, culprit: RegExp): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), 'kit-refused-'));
  const [port, redisPort, ...nodePorts] = await freePorts(6);
  try {
    const up = await runDoor(
      'up',
      {
        PORT: String(port),
        NODE_PORTS: nodePorts.join(','),
        REDIS_PORT: String(redisPort),
        RUN_DIR: runDir,
        ...env,
      },
      ['--detach'],
    );
    // Every bad setting is KIT_ERR_CONFIG, exit status 78 (README, "Errors").
    assert.equal(up.code, 78, 'up.sh must fail with the configuration error status');
    const lastLine = up.stderr.trim().split('\n').at(-1) ?? '';
    assert.match(lastLine, /^up\.sh: KIT_ERR_CONFIG /);
    assert.match(lastLine, culprit);
    assert.deepEqual(await processesMentioning(runDir), [], 'something was left running');
    const pids = join(runDir, 'pids');
    assert.deepEqual(readdirSync(runDir).includes('pids') ? readdirSync(pids) : [], []);
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
}

describe('up.sh refuses bad configuration', () => {
  it('a duplicate port in NODE_PORTS', async () => {
    await refused(
      { NODE_PORTS: '31001,31002,31001' },
      /KIT_ERR_CONFIG NODE_PORTS="31001,31002,31001": port 31001 is listed twice/,
    );
  });

  it('an out-of-range port in NODE_PORTS', async () => {
    await refused(
      { NODE_PORTS: '31001,70000' },
      /NODE_PORTS="31001,70000": port 70000 is out of range/,
    );
  });

  it('a PORT that is not a number', async () => {
    await refused({ PORT: 'eighty' }, /PORT="eighty"/);
  });

  it('a port already taken by another process, which keeps running', async () => {
    const [taken] = await freePorts(1);
    const squatter: Server = createServer((s) => s.end('still here\n'));
    await new Promise<void>((r) => squatter.listen(taken, '127.0.0.1', r));
    try {
      const others = await freePorts(2);
      await refused(
        { NODE_PORTS: `${others[0]},${taken},${others[1]}` },
        new RegExp(`NODE_PORTS=.*port ${taken} is already in use`),
      );
      assert.ok(squatter.listening, 'the other process must still be listening');
      const greeting = await new Promise<string>((resolve, reject) => {
        const socket = connect(taken as number, '127.0.0.1');
        socket.once('data', (d) => resolve(String(d)));
        socket.once('error', reject);
      });
      assert.equal(greeting, 'still here\n');
    } finally {
      squatter.close();
    }
  });

  it('an unreachable REDIS_URL', async () => {
    const [nobody] = await freePorts(1);
    await refused(
      { REDIS_URL: `redis://127.0.0.1:${nobody}` },
      new RegExp(`REDIS_URL="redis://127.0.0.1:${nobody}": Redis does not answer`),
    );
  });

  it('an APP_MODULE that fails to load', async () => {
    await refused(
      { APP_MODULE: 'test/fixtures/broken-app.ts' },
      /APP_MODULE=".*broken-app\.ts": does not load: .*broken on purpose/,
    );
  });

  it('an APP_MODULE that does not exist', async () => {
    await refused({ APP_MODULE: 'no/such/app.ts' }, /APP_MODULE="no\/such\/app\.ts": no such file/);
  });
});
