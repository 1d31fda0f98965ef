// A node that stops answering without exiting (SIGSTOP here; an endless loop looks the same from
// outside) is noticed by the supervisor's /healthz probe, killed and started again, and its
// clients come back, instead of it keeping its share of new clients forever.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { alive } from '../../scripts/kit/proc.ts';
import { clientsOnNets, closeAll, next, type PlacedClient } from '../harness/clients.ts';
import { type Kit, launchKit, waitFor } from '../harness/kit.ts';

async function readyz(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, {
      signal: AbortSignal.timeout(1000),
    });
    return response.status === 200;
  } catch {
    return false;
  }
}

describe('liveness', () => {
  let kit: Kit;
  const clients: PlacedClient[] = [];
  const stopped: number[] = [];
  before(async () => {
    kit = await launchKit({ nodes: 2, env: { APP_MODULE: 'test/fixtures/echo-app.ts' } });
    clients.push(...(await clientsOnNets(kit.url, 8)));
  });
  after(async () => {
    // A stopped process that outlived a failed test must not hang down.sh.
    for (const pid of stopped) {
      try {
        if (alive(pid)) process.kill(pid, 'SIGCONT');
      } catch {}
    }
    closeAll(clients.map((c) => c.socket));
    await kit?.stop();
  });

  it('replaces a node stopped with SIGSTOP, and its clients reconnect', async () => {
    const victim = clients[0]?.node as string;
    const port = Number(victim.replace('node-', ''));
    const victims = clients.filter((c) => c.node === victim);
    const reconnected = Promise.all(victims.map((c) => next(c.socket, 'connect', 20_000)));
    // Awaited below; a failure before that must not surface as an unhandled rejection.
    reconnected.catch(() => {});
    const oldPid = kit.pid(victim);

    const stoppedAt = Date.now();
    stopped.push(oldPid);
    process.kill(oldPid, 'SIGSTOP');

    const newPid = await waitFor(
      'a new, ready process for the stopped node',
      async () => {
        // Between the old process's exit and the new one's start there is no pid file.
        const pid = existsSync(join(kit.runDir, 'pids', `${victim}.pid`))
          ? kit.pid(victim)
          : oldPid;
        return pid !== oldPid && alive(pid) && (await readyz(port)) ? pid : undefined;
      },
      15_000,
      100,
    ).catch((error: Error) => {
      // What the supervisor saw, for whoever reads a failure.
      console.log(readFileSync(join(kit.runDir, 'logs', 'supervisor.log'), 'utf8').slice(-3000));
      throw error;
    });
    const replacedMs = Date.now() - stoppedAt;
    await reconnected;
    const reconnectedMs = Date.now() - stoppedAt;
    console.log(
      `SIGSTOP ${victim}: replaced (pid ${oldPid} → ${newPid}) and ready after ${replacedMs} ms; ` +
        `its ${victims.length} clients back after ${reconnectedMs} ms`,
    );
    assert.ok(!alive(oldPid), 'the stopped process must be gone');
    assert.ok(reconnectedMs < 20_000);

    const log = readFileSync(join(kit.runDir, 'logs', 'supervisor.log'), 'utf8');
    assert.match(
      log,
      new RegExp(
        `${victim} did not answer /healthz for \\d+s \\(timeout\\); killing it \\(SIGKILL\\)`,
      ),
    );
  });
});
