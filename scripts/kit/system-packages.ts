// Installs what a fresh Debian/Ubuntu machine lacks from the OS packages. npm dependencies are
// installed before this runs, by scripts/kit/door.sh.
import { existsSync } from 'node:fs';
import { $ } from 'zx';
import { KitError } from '../../services/node/errors.ts';

export interface SystemPackage {
  readonly binary: string;
  readonly apt: string;
}

export const NGINX: SystemPackage = { binary: '/usr/sbin/nginx', apt: 'nginx' };
export const REDIS: SystemPackage = { binary: '/usr/bin/redis-server', apt: 'redis-server' };
// `ip`, for the multi-host tests: their hosts are network namespaces (test/multihost/).
export const IPROUTE2: SystemPackage = { binary: '/usr/sbin/ip', apt: 'iproute2' };
// `nft`, for a multi-host test that drops one connection's packets (a replication stream).
export const NFTABLES: SystemPackage = { binary: '/usr/sbin/nft', apt: 'nftables' };
/** systemd-analyze, for the test that checks deploy/'s units (systemd need not run). */
export const SYSTEMD: SystemPackage = { binary: '/usr/bin/systemd-analyze', apt: 'systemd' };
export const CHROMIUM: SystemPackage = { binary: '/usr/bin/chromium', apt: 'chromium' };

async function sudoPrefix(): Promise<string[] | undefined> {
  if (process.getuid?.() === 0) return [];
  const sudo = await $({ nothrow: true, timeout: '5s' })`sudo -n true`;
  return sudo.exitCode === 0 ? ['sudo', '-n'] : undefined;
}

export async function ensureSystemPackages(
  packages: readonly SystemPackage[],
  progress: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<void> {
  const missing = packages.filter((p) => !existsSync(p.binary));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.apt);
  const prefix = await sudoPrefix();
  if (prefix === undefined) {
    throw new KitError(
      'KIT_ERR_PREFLIGHT',
      `missing ${names.join(', ')}: install with \`sudo apt-get install -y ${names.join(' ')}\` and run again`,
    );
  }
  if (!existsSync('/usr/bin/apt-get')) {
    throw new KitError(
      'KIT_ERR_PREFLIGHT',
      `missing ${names.join(', ')} and no apt-get here: install them with your package manager`,
    );
  }
  progress(`installing ${names.join(', ')} from the OS packages (apt-get)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await $({ env, timeout: '10m' })`${prefix} apt-get update -qq`;
  await $({ env, timeout: '20m' })`${prefix} apt-get install -y -qq ${names}`;
  const still = missing.filter((p) => !existsSync(p.binary));
  if (still.length > 0) {
    throw new KitError(
      'KIT_ERR_PREFLIGHT',
      `apt-get installed ${names.join(', ')} but ${still.map((p) => p.binary).join(', ')} is missing`,
    );
  }
  progress(`installed ${names.join(', ')}`);
}
