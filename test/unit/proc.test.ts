// What the kit reads of a process from /proc.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { alive } from '../../scripts/kit/proc.ts';

describe('processes', () => {
  it('counts a zombie (exited, not yet reaped by its parent) as not alive', async () => {
    // sh starts a short sleep and becomes a long one, which never reaps the first: a zombie, as a
    // detached supervisor is under an init that reaps late.
    const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 10'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const [line] = (await once(parent.stdout, 'data')) as [Buffer];
      const zombie = Number(line.toString().trim());
      const state = () => readFileSync(`/proc/${zombie}/stat`, 'utf8').split(') ')[1]?.[0];
      const until = Date.now() + 5000;
      while (state() !== 'Z' && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(state(), 'Z', 'the short sleep exited and was not reaped');
      assert.equal(alive(zombie), false);
      assert.equal(alive(parent.pid as number), true);
      assert.equal(alive(process.pid), true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
