// Installs what the kit (and, with --browser, the browser tests) needs from the OS packages.
// Used by npm test; up.sh runs the same check for its own parts.

import { fail } from './kit/report.ts';
import { CHROMIUM, ensureSystemPackages, NGINX, REDIS } from './kit/system-packages.ts';

const browser = process.argv.includes('--browser');
try {
  await ensureSystemPackages(browser ? [NGINX, REDIS, CHROMIUM] : [NGINX, REDIS]);
} catch (error) {
  fail('preflight', error);
}
