// Whole kits for the tests, through the one launcher the bench uses too
// (scripts/kit/launch-kit.ts), and what tests look at around them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { createClient } from 'redis';
import { allPids, commandLine, workingDirectory } from '../../scripts/kit/proc.ts';
import { waitUntil } from '../../scripts/kit/wait.ts';
import type { Redis } from '../../services/node/redis.ts';

export { isolatedKitEnv } from '../../scripts/kit/isolated-env.ts';

import {
  type LaunchedKit as Kit,
  type LaunchOptions,
  launchKit,
} from '../../scripts/kit/launch-kit.ts';

export type { DoorResult, LaunchedKit as Kit } from '../../scripts/kit/launch-kit.ts';
export { launchKit, runDoor } from '../../scripts/kit/launch-kit.ts';
export { freePorts, portFree } from '../../scripts/kit/ports.ts';
export { processTree } from '../../scripts/kit/proc.ts';

/** A client of the kit's own Redis (its password from RUN_DIR), connected; `quit()` it. */
export async function kitRedis(kit: Kit): Promise<Redis> {
  const password = readFileSync(join(kit.runDir, 'redis', 'password'), 'utf8').trim();
  const redis = createClient({ url: `redis://127.0.0.1:${kit.redisPort}`, password }) as Redis;
  await redis.connect();
  return redis;
}

/** Processes whose command line or working directory mentions `needle`. */
export function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const args = commandLine(pid);
    const cwd = workingDirectory(pid) ?? '';
    if (args.includes(needle) || cwd.startsWith(needle)) found.push(`${pid} ${args} cwd=${cwd}`);
  }
  return found;
}

/** waitUntil (scripts/kit/wait.ts) with a test's arguments: a rejection names `what`. */
export function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  return waitUntil(what, probe, { timeoutMs, intervalMs, maxIntervalMs: intervalMs });
}

/**
 * A kit for the tests of the describe block this is called in: launched before the first, stopped
 * after the last, once the `clients` the tests opened (pushed into that array) are disconnected.
 * Use its fields inside tests and hooks only.
 */
export function useKit(
  options: LaunchOptions & { clients?: readonly { socket: { disconnect(): unknown } }[] } = {},
): Kit {
  const { clients = [], ...launch } = options;
  let launched: Kit | undefined;
  before(async () => {
    launched = await launchKit(launch);
  });
  after(async () => {
    for (const client of clients) client.socket.disconnect();
    await launched?.stop();
  });
  return new Proxy({} as Kit, {
    get(_target, field) {
      if (launched === undefined) throw new Error('the kit is used before it was launched');
      return Reflect.get(launched, field);
    },
  });
}
