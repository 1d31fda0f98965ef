// ./scripts/restart.sh: rolling restart of the nodes, one at a time. Each node drains on its stop
// signal (its clients reconnect to the others), the supervisor starts it again, and the next node
// is touched only once this one is a new process and ready.
import { kitParts, SUPERVISOR } from './kit/parts.ts';
import { livePid } from './kit/pid-files.ts';
import { configOrFail, fail, shortPath } from './kit/report.ts';
import { runDir } from './kit/run-dir.ts';
import { waitUntil } from './kit/wait.ts';

const config = configOrFail('restart.sh');
const dir = runDir(config.runDir);
if (livePid(dir, SUPERVISOR.name) === undefined) {
  fail(
    'restart.sh',
    `the kit of RUN_DIR=${dir.root} is not running; start it with ./scripts/up.sh`,
    'KIT_ERR_NOT_RUNNING',
  );
}

const nodes = kitParts(config, dir).filter((p) => p.kind === 'node');
if (nodes.length === 0) {
  fail(
    'restart.sh',
    'this host runs no nodes (role balancer): restart them on their hosts',
    'KIT_ERR_USAGE',
  );
}
for (const node of nodes) {
  const began = Date.now();
  const old = livePid(dir, node.name);
  if (old !== undefined) process.kill(old, node.stopSignal);
  try {
    const now = await waitUntil(
      `${node.name} to be back`,
      async () => {
        const pid = livePid(dir, node.name);
        return pid !== undefined && pid !== old && (await node.ready()) ? pid : undefined;
      },
      { timeoutMs: node.graceMs + node.readyTimeoutMs, maxIntervalMs: 100 },
    );
    process.stdout.write(
      `${node.name} restarted in ${((Date.now() - began) / 1000).toFixed(1)}s (pid ${old ?? '-'} → ${now})\n`,
    );
  } catch {
    fail(
      'restart.sh',
      `${node.name} was not back and ready ${(node.graceMs + node.readyTimeoutMs) / 1000}s after its stop signal; stopped there (see ${shortPath(node.log)})`,
      'KIT_ERR_START',
    );
  }
}
