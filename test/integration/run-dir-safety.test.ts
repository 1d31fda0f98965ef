// RUN_DIR is where root writes logs and secrets and reads the pids it signals: a RUN_DIR others
// can write to is refused, a planted pid file never gets its process signalled, and a log path
// that is a symbolic link is not written through.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { alive } from '../../scripts/kit/proc.ts';
import { freePorts, processesMentioning, runDoor, waitFor } from '../harness/kit.ts';

/** The fields a pid file records for a process: pid, kernel start time, command name. */
function procFields(pid: number): { started: string; comm: string } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return {
    started: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string,
    comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(),
  };
}

async function kitEnv(runDir: string): Promise<NodeJS.ProcessEnv> {
  const [port, redisPort, ...nodePorts] = await freePorts(4);
  return {
    PORT: String(port),
    NODE_PORTS: nodePorts.join(','),
    REDIS_PORT: String(redisPort),
    RUN_DIR: runDir,
  };
}

describe('RUN_DIR safety', () => {
  const made: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'kit-safety-'));
    made.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a RUN_DIR every user may write to, and starts nothing', async () => {
    const runDir = tempDir();
    chmodSync(runDir, 0o777);
    const env = await kitEnv(runDir);
    try {
      const up = await runDoor('up', env, ['--detach']);
      assert.equal(up.code, 77, 'up.sh must refuse with KIT_ERR_UNSAFE_PATH');
      const last = up.stderr.trim().split('\n').at(-1) ?? '';
      assert.match(
        last,
        /^up\.sh: KIT_ERR_UNSAFE_PATH RUN_DIR=.* is not safe to use: it is writable by every user/,
      );
      assert.ok(last.includes(runDir), 'the line names RUN_DIR');
      assert.equal(existsSync(join(runDir, 'pids')), false, 'nothing may be made in it');
      assert.deepEqual(await processesMentioning(runDir), []);
    } finally {
      // What a faulty up.sh started; down.sh itself refuses nothing, it only checks pid files.
      chmodSync(runDir, 0o700);
      await runDoor('down', env);
    }
  });

  it('down.sh signals neither pid 1 nor an unrelated process named in planted pid files', async () => {
    const runDir = tempDir();
    const pids = join(runDir, 'pids');
    mkdirSync(pids, { mode: 0o750 });
    // A process of ours that is no part of any kit, recorded as if it were a node.
    const bystander = spawn('sleep', ['60'], { stdio: 'ignore' });
    const pid = bystander.pid as number;
    try {
      const one = procFields(1);
      writeFileSync(join(pids, 'supervisor.pid'), `1 ${one.started} ${one.comm}\n`);
      writeFileSync(join(pids, 'node-1.pid'), `${pid} ${procFields(pid).started} node\n`);
      writeFileSync(join(pids, 'redis.pid'), `${pid} ${procFields(pid).started}\n`);
      const down = await runDoor('down', await kitEnv(runDir), [], 60_000);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /nothing was running/);
      assert.ok(alive(pid) && bystander.exitCode === null, 'the unrelated process was signalled');
    } finally {
      bystander.kill('SIGKILL');
    }
  });

  for (const log of ['supervisor.log', 'node-PORT.log']) {
    it(`refuses a ${log} that is a symbolic link, and leaves its target untouched`, async () => {
      const runDir = tempDir();
      const env = await kitEnv(runDir);
      const target = join(tempDir(), 'precious');
      writeFileSync(target, 'precious\n');
      mkdirSync(join(runDir, 'logs'), { mode: 0o750 });
      const name = log.replace('PORT', (env.NODE_PORTS as string).split(',')[0] as string);
      symlinkSync(target, join(runDir, 'logs', name));
      try {
        const up = await runDoor('up', env, ['--detach']);
        assert.notEqual(up.code, 0, 'up.sh must refuse');
        assert.match(up.stderr.trim().split('\n').at(-1) ?? '', /is a symbolic link/);
        assert.equal(readFileSync(target, 'utf8'), 'precious\n');
        assert.deepEqual(await processesMentioning(runDir), []);
      } finally {
        await runDoor('down', env);
        await waitFor('nothing left', async () => (await processesMentioning(runDir)).length === 0);
      }
    });
  }
});
