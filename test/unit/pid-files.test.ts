// A pid file gets its process signalled only when it is ours and names the very process that wrote
// it: pid 1, this process, another command, a file others may write or a link are all refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  chmodSync,
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
import {
  livePid,
  pidFile,
  processRecord,
  recordedLivePid,
  runDir,
} from '../../scripts/kit/run-dir.ts';

describe('pid files', () => {
  const root = mkdtempSync(join(tmpdir(), 'kit-pids-'));
  const dir = runDir(root);
  mkdirSync(dir.pids);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  const pid = sleeper.pid as number;
  after(() => {
    sleeper.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });
  const plant = (name: string, content: string, mode = 0o644): string => {
    const file = join(dir.pids, name);
    writeFileSync(file, content, { mode });
    chmodSync(file, mode);
    return file;
  };

  it('finds a process by pid, start time and command name', () => {
    plant('a.pid', processRecord(pid, '/usr/bin/sleep'));
    assert.equal(livePid(dir, 'a'), pid);
  });

  it('refuses another command name, a missing one, pid 1 and this process', () => {
    plant('b.pid', processRecord(pid, 'node'));
    assert.equal(livePid(dir, 'b'), undefined, 'sleep is not node');
    plant('c.pid', `${processRecord(pid, 'sleep').split(' ').slice(0, 2).join(' ')}\n`);
    assert.equal(livePid(dir, 'c'), undefined, 'a record without a command name');
    plant('d.pid', processRecord(1, readFileSync('/proc/1/comm', 'utf8').trim()));
    assert.equal(livePid(dir, 'd'), undefined, 'pid 1');
    plant('e.pid', processRecord(process.pid, process.execPath));
    assert.equal(livePid(dir, 'e'), undefined, 'this process');
  });

  it('refuses a pid file others may write, or a link', () => {
    plant('f.pid', processRecord(pid, 'sleep'), 0o666);
    assert.equal(livePid(dir, 'f'), undefined, 'writable by others');
    const real = plant('real.pid', processRecord(pid, 'sleep'));
    symlinkSync(real, pidFile(dir, 'g'));
    assert.equal(recordedLivePid(pidFile(dir, 'g')), undefined, 'a symbolic link');
  });
});
