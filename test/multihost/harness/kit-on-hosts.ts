// The kit on the test's hosts (network namespaces, netns.ts): a role started with the kit's own
// up.sh inside a host, acted on with its own doors there, and clients from source addresses of
// their own so that the balancers' ip_hash spreads them.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isolatedKitEnv } from '../../../scripts/kit/isolated-env.ts';
import { ROOT } from '../../../services/node/config.ts';
import type { Host, Hosts, RunResult } from './netns.ts';

export const NODE_PORT = 6001;
export const BALANCER_PORT = 3000;
/** Shared by every nodes host (the kit refuses a nodes host without it). */
export const EMIT_TOKEN = 'multihost-emit-token-4f7a9c2e1b';

export interface RoleKit {
  readonly host: Host;
  readonly role: 'nodes' | 'balancer';
  readonly env: NodeJS.ProcessEnv;
  /** Changes variables for the doors run from now on (an operator editing the host's .env). */
  set(changes: NodeJS.ProcessEnv): void;
  /** Runs one of the kit's doors (`status`, `reload`, `down`, …) inside the host. */
  door(name: string, args?: string[], timeoutMs?: number): Promise<RunResult>;
}

/** Starts `up.sh --detach --role <role>` inside `host` with `env` and nothing else of the kit's. */
export async function startRole(
  hosts: Hosts,
  host: Host,
  role: 'nodes' | 'balancer',
  env: NodeJS.ProcessEnv,
): Promise<RoleKit> {
  // mkdtemp makes 0700 folders; the kit's service user must pass through to its RUN_DIR.
  chmodSync(hosts.dir, 0o755);
  chmodSync(host.dir, 0o755);
  const runDir = mkdtempSync(join(host.dir, `${role}-`));
  chmodSync(runDir, 0o755);
  const full: NodeJS.ProcessEnv = { RUN_DIR: runDir, LOG_LEVEL: 'warn', ...env };
  const kit: RoleKit = {
    host,
    role,
    env: full,
    set: (changes) => Object.assign(full, changes),
    door: (name, args = [], timeoutMs = 120_000) =>
      host.run(join(ROOT, 'scripts', `${name}.sh`), args, {
        cwd: ROOT,
        env: isolatedKitEnv({ ...full, KIT_ROLE: role }),
        timeoutMs,
      }),
  };
  const up = await kit.door('up', ['--detach', '--role', role], 180_000);
  if (up.code !== 0) {
    const logs = role === 'nodes' ? readTail(join(runDir, 'logs', `node-${NODE_PORT}.log`)) : '';
    await kit.door('down').catch(() => undefined);
    throw new Error(`${host.name}: up.sh --role ${role} failed (${up.code}):\n${up.output}${logs}`);
  }
  return kit;
}

function readTail(file: string): string {
  try {
    return `\n--- ${file}\n${readFileSync(file, 'utf8').split('\n').slice(-30).join('\n')}`;
  } catch {
    return '';
  }
}

/**
 * Source addresses for clients in the root namespace, each in a /24 of its own (ip_hash hashes
 * the first three octets): 198.19.N.1 on the hosts' bridge, and a route back to them in every
 * host. Only addresses of the range set aside for such tests (198.18.0.0/15), only on links the
 * test made; they go with the bridge when the hosts are removed.
 */
export function clientAddresses(hosts: Hosts, count: number): string[] {
  const links = JSON.parse(execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8' })) as {
    ifname: string;
    addr_info: { local: string }[];
  }[];
  const bridge = links.find((l) => l.addr_info.some((a) => a.local === hosts.bridgeAddress));
  if (!bridge) throw new Error(`no link holds ${hosts.bridgeAddress}`);
  // Never in the hosts' own /24.
  const taken = hosts.subnet.split('.').slice(0, 3).join('.');
  const addresses = Array.from({ length: 256 }, (_, i) => `198.19.${i}.1`)
    .filter((a) => !a.startsWith(`${taken}.`))
    .slice(0, count);
  for (const address of addresses) {
    execFileSync('ip', ['addr', 'add', `${address}/32`, 'dev', bridge.ifname]);
  }
  for (const host of hosts.hosts) {
    execFileSync('ip', [
      '-n',
      host.name,
      'route',
      'add',
      '198.19.0.0/16',
      'via',
      hosts.bridgeAddress,
    ]);
  }
  return addresses;
}
