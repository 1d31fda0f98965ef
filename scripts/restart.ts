// ./scripts/restart.sh: rolling restart of the nodes, one at a time. Each node drains on SIGTERM
// (its clients reconnect to the others), the supervisor starts it again, and the next node is
// touched only once this one answers /readyz.
import { sleep } from 'zx';
import { httpOk } from './kit/probes.ts';
import { configOrFail, fail } from './kit/report.ts';
import { livePid, runDir } from './kit/run-dir.ts';

const config = configOrFail('restart.sh');
const dir = runDir(config.runDir);
if (livePid(dir, 'supervisor') === undefined) {
  fail(
    'restart.sh',
    `the kit of RUN_DIR=${dir.root} is not running; start it with ./scripts/up.sh`,
  );
}

const READY_TIMEOUT_MS = 30_000;
for (const port of config.nodePorts) {
  const name = `node-${port}`;
  const began = Date.now();
  const old = livePid(dir, name);
  if (old !== undefined) process.kill(old, 'SIGTERM');
  for (;;) {
    const now = livePid(dir, name);
    if (now !== undefined && now !== old && (await httpOk(`http://127.0.0.1:${port}/readyz`))) {
      process.stdout.write(
        `${name} restarted in ${((Date.now() - began) / 1000).toFixed(1)}s (pid ${old ?? '-'} → ${now})\n`,
      );
      break;
    }
    if (Date.now() - began > READY_TIMEOUT_MS) {
      fail(
        'restart.sh',
        `${name} was not ready ${READY_TIMEOUT_MS / 1000}s after its restart; stopped there (see ${config.runDir}/logs/${name}.log)`,
      );
    }
    await sleep(100);
  }
}
