// ./scripts/down.sh: stop everything up.sh started, gracefully, through its pid files and in the
// table's stop order. Only processes that still belong to this RUN_DIR are signalled. Safe to run
// any number of times.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { kitParts, NODE_STOP, type Part, SUPERVISOR, stopGroups } from './kit/parts.ts';
import { livePid, recordedLivePid, recordedParts, removePid } from './kit/pid-files.ts';
import { configOrFail } from './kit/report.ts';
import { runDir } from './kit/run-dir.ts';
import { lockFile } from './kit/start-lock.ts';
import { stopProcess } from './kit/stop-process.ts';

const config = configOrFail('down.sh', { lenient: true });
const dir = runDir(config.runDir);

type StopRule = Pick<Part, 'name' | 'stopSignal' | 'graceMs' | 'stopOrder'>;

async function stop(rule: Pick<StopRule, 'name' | 'stopSignal' | 'graceMs'>): Promise<boolean> {
  const pid = livePid(dir, rule.name);
  if (pid !== undefined) await stopProcess(pid, rule.stopSignal, rule.graceMs);
  removePid(dir, rule.name);
  return pid !== undefined;
}

const stopped: string[] = [];
// The supervisor stops its children in order and does not restart them.
if (await stop(SUPERVISOR)) stopped.push(SUPERVISOR.name);
// Whatever is left: a supervisor killed with SIGKILL leaves its children behind. A pid file of a
// part this configuration no longer has (a port since taken out of NODE_PORTS) is stopped as a
// node is.
const table = new Map<string, StopRule>(kitParts(config, dir).map((p) => [p.name, p]));
const leftovers = recordedParts(dir)
  .filter((name) => name !== SUPERVISOR.name)
  .map((name): StopRule => table.get(name) ?? { name, ...NODE_STOP });
for (const group of stopGroups(leftovers)) {
  const results = await Promise.all(
    group.map(async (rule) => ((await stop(rule)) ? rule.name : '')),
  );
  stopped.push(...results.filter(Boolean));
}
// A lock left by an up.sh or supervisor that is gone; one held by a starting up.sh stays.
if (recordedLivePid(lockFile(dir)) === undefined) rmSync(lockFile(dir), { force: true });
// Every node is gone: a socket file left by one that was killed is stale.
for (const file of existsSync(dir.sockets) ? readdirSync(dir.sockets) : []) {
  if (file.endsWith('.sock')) rmSync(join(dir.sockets, file), { force: true });
}
process.stdout.write(
  stopped.length > 0 ? `stopped: ${stopped.join(', ')}\n` : 'nothing was running\n',
);
