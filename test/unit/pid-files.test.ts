// A pid file gets its process signalled only when it is ours and names the very process that wrote
// it: pid 1, this process, another command, a file others may write or a link are all refused.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  livePid,
  pidFile,
  processRecord,
  recordedLivePid,
  writePid,
} from '../../scripts/kit/pid-files.ts';
import { runDir } from '../../scripts/kit/run-dir.ts';

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

  it('finds a process by pid, start time and executable', () => {
    plant('a.pid', processRecord(pid));
    assert.equal(livePid(dir, 'a'), pid);
  });

  it('finds a node process that renames its main thread, as Node 24 does', async () => {
    // Node 24 calls its main thread `MainThread` (nodejs/node#56416): /proc/<pid>/comm changes.
    const node = spawn(
      process.execPath,
      ['-e', "process.title = 'MainThread'; setTimeout(() => {}, 60_000); console.log('ready')"],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    try {
      writePid(dir, 'node', node.pid as number);
      await new Promise((resolve) => node.stdout.once('data', resolve));
      assert.equal(livePid(dir, 'node'), node.pid);
    } finally {
      node.kill('SIGKILL');
    }
  });

  it('refuses another executable, a missing one, pid 1 and this process', () => {
    plant('b.pid', processRecord(pid, process.execPath));
    assert.equal(livePid(dir, 'b'), undefined, 'sleep is not node');
    plant('c.pid', `${processRecord(pid).split(' ').slice(0, 2).join(' ')}\n`);
    assert.equal(livePid(dir, 'c'), undefined, 'a record without an executable');
    plant('d.pid', processRecord(1));
    assert.equal(livePid(dir, 'd'), undefined, 'pid 1');
    plant('e.pid', processRecord(process.pid, process.execPath));
    assert.equal(livePid(dir, 'e'), undefined, 'this process');
  });

  it('refuses a pid file others may write, or a link', () => {
    plant('f.pid', processRecord(pid), 0o666);
    assert.equal(livePid(dir, 'f'), undefined, 'writable by others');
    const real = plant('real.pid', processRecord(pid));
    symlinkSync(real, pidFile(dir, 'g'));
    assert.equal(recordedLivePid(pidFile(dir, 'g')), undefined, 'a symbolic link');
  });
});
