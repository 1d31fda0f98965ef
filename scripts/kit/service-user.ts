// Started as root (CI, a fresh server), the kit runs redis-server and the nodes as an unprivileged
// system user: neither needs root, and a flaw in either (or in an APP_MODULE) then does not hand
// over the machine. Their logs are opened by the supervisor and handed over as descriptors, so
// they stay root's; they write only RUN_DIR/redis and RUN_DIR/sockets. nginx's workers already
// drop to nobody.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../services/node/config.ts';
import type { KitConfig } from './config.ts';

const run = promisify(execFile);

export const SERVICE_USER = 'socketio-kit';

export interface RunAs {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
}

/** Who Redis and the nodes run as: `runAs` when they drop root, else why they keep it (as root). */
export interface ServiceUser {
  readonly runAs?: RunAs;
  readonly why?: string;
}

/** The service user from /etc/passwd, if it exists (no command, no waiting). */
export function knownServiceUser(): RunAs | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  const fields = passwd
    .split('\n')
    .map((line) => line.split(':'))
    .find((f) => f[0] === SERVICE_USER);
  return fields
    ? { user: SERVICE_USER, uid: Number(fields[2]), gid: Number(fields[3]) }
    : undefined;
}

async function createServiceUser(): Promise<RunAs> {
  await run(
    'useradd',
    ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER],
    { timeout: 15_000 },
  );
  const user = knownServiceUser();
  if (user === undefined) throw new Error(`useradd made no ${SERVICE_USER} in /etc/passwd`);
  return user;
}

/** Why `user` cannot start a node from this checkout (a 0700 home above it, say), or undefined. */
async function unreadableWhy(user: RunAs, config: KitConfig): Promise<string | undefined> {
  const needed = [
    join(ROOT, 'services/node/main.ts'),
    join(ROOT, 'node_modules/tsx/package.json'),
    config.appModule,
  ];
  const probe = `const fs = require('node:fs');
for (const path of ${JSON.stringify(needed)}) {
  try { fs.accessSync(path, fs.constants.R_OK); } catch { console.error(path); process.exit(2); }
}`;
  try {
    await run(process.execPath, ['-e', probe], {
      uid: user.uid,
      gid: user.gid,
      cwd: '/',
      timeout: 10_000,
    });
    return undefined;
  } catch (error) {
    const path = (error as { stderr?: string }).stderr?.trim();
    return path ? `${SERVICE_USER} cannot read ${path}` : (error as Error).message;
  }
}

export async function chooseServiceUser(
  config: KitConfig,
  uid = process.getuid?.(),
): Promise<ServiceUser> {
  if (uid !== 0) return {};
  let user: RunAs;
  try {
    user = knownServiceUser() ?? (await createServiceUser());
  } catch (error) {
    return { why: `could not create user ${SERVICE_USER}: ${(error as Error).message}` };
  }
  const why = await unreadableWhy(user, config);
  return why === undefined ? { runAs: user } : { why };
}

export function describeServiceUser(chosen: ServiceUser): string {
  if (chosen.runAs) return `Redis and the nodes run as ${chosen.runAs.user}`;
  if (chosen.why) return `Redis and the nodes run as root (${chosen.why})`;
  return 'Redis and the nodes run as this user';
}
