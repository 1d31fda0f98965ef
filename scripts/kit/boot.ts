// The start of a kit, in order: the secrets and Redis's configuration, then the parts from the
// last to stop to the first (Redis, the nodes, nginx), each group ready before the next. On any
// failure what was started is stopped again. (The checks before, nginx's configuration among
// them, are up.sh's.)
import { closeSync } from 'node:fs';
import { join } from 'node:path';
import { hashAdminPassword } from '../../services/node/admin-auth.ts';
import { type KitConfig, ownRedis } from './config.ts';
import { kitParts, type Part, type StartSecrets, stopGroups } from './parts.ts';
import { ownRedisNodeUrl, writeRedisConf } from './redis-server.ts';
import { handOverWritableDirs, type RunDir, secret, writeState } from './run-dir.ts';
import { openLog } from './safe-files.ts';
import { chooseServiceUser, describeServiceUser, type RunAs } from './service-user.ts';
import type { Say, Supervisor } from './supervisor.ts';

/**
 * Creates every log the kit writes (the parts', nginx's access log, the supervisor's) or throws if
 * one is a symbolic link: nginx opens its own logs as root, and `nginx -t` already writes one.
 */
export function refuseLinkedLogs(parts: readonly Part[], dir: RunDir): void {
  const extra = ['nginx-access.log', 'supervisor.log'].map((f) => join(dir.logs, f));
  for (const log of [...parts.map((p) => p.log), ...extra]) closeSync(openLog(log));
}

/** What only a start makes: the Redis password, the emit token, the admin password's hash. */
function makeSecrets(config: KitConfig, dir: RunDir): StartSecrets {
  return {
    redisUrl: ownRedis(config.role, config.redisUrl, config.redisCluster)
      ? ownRedisNodeUrl(config, dir)
      : config.redisUrl,
    emitToken: config.emitToken ?? secret(join(dir.root, 'emit-token')),
    // Unset ADMIN_PASSWORD: no hash handed over, the nodes keep the Admin UI off.
    adminPasswordHash:
      config.adminPassword === undefined ? undefined : hashAdminPassword(config.adminPassword),
  };
}

/** What a start needs decided before a supervisor exists: the parts, and who runs them. */
export interface BootPlan {
  readonly parts: readonly Part[];
  readonly runAs: RunAs | undefined;
  /** For up.sh's summary: who Redis and the nodes run as, and why. */
  readonly serviceUser: string;
}

export async function planBoot(config: KitConfig, dir: RunDir): Promise<BootPlan> {
  const chosen = await chooseServiceUser(config);
  return {
    parts: kitParts(config, dir),
    runAs: chosen.runAs,
    serviceUser: describeServiceUser(chosen),
  };
}

/**
 * Starts the planned parts under `supervisor`, the last to stop first; up.sh has already checked
 * everything and rendered nginx's configuration. On failure, stops what it started and throws.
 */
export async function bootKit(
  config: KitConfig,
  dir: RunDir,
  plan: BootPlan,
  supervisor: Supervisor,
  progress: Say,
): Promise<void> {
  const { parts, runAs, serviceUser } = plan;
  writeState(dir, { status: 'starting', supervisorPid: process.pid, serviceUser });
  try {
    const secrets = makeSecrets(config, dir);
    if (parts.some((p) => p.kind === 'redis')) writeRedisConf(config, dir);
    if (runAs) handOverWritableDirs(dir, runAs);
    for (const group of stopGroups(parts).reverse()) {
      for (const part of group) supervisor.start(part, part.launch(secrets));
      await supervisor.waitReady(group, progress);
    }
  } catch (error) {
    await supervisor.stopAll();
    throw error;
  }
  writeState(dir, { status: 'ready', supervisorPid: process.pid, serviceUser });
}
