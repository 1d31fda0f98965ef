// Installs what the kit (and, with --browser, the browser tests) needs from the OS packages.
// Used by npm test; up.sh runs the same check for its own parts.

import { fail } from './kit/report.ts';
import {
  CHROMIUM,
  ensureSystemPackages,
  IPROUTE2,
  NFTABLES,
  NGINX,
  REDIS,
  SYSTEMD,
} from './kit/system-packages.ts';

const browser = process.argv.includes('--browser');
try {
  // The tests' own needs besides the kit's: network namespaces (and a firewall in them), and
  // systemd-analyze.
  const packages = [NGINX, REDIS, IPROUTE2, NFTABLES, SYSTEMD];
  await ensureSystemPackages(browser ? [...packages, CHROMIUM] : packages);
} catch (error) {
  fail('preflight', error);
}
