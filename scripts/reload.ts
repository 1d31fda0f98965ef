// ./scripts/reload.sh: re-render nginx's configuration, check it with `nginx -t`, and reload
// nginx gracefully (new workers take new connections, old ones keep theirs). A broken template
// is reported and the running configuration keeps serving.
import { join } from 'node:path';
import { $ } from 'zx';
import { KitError } from '../services/node/errors.ts';
import { livePid } from './kit/pid-files.ts';
import { NGINX_BIN, nginxArgs, renderNginx } from './kit/render-nginx.ts';
import { configOrFail, fail } from './kit/report.ts';
import { runDir } from './kit/run-dir.ts';

const config = configOrFail('reload.sh');
const dir = runDir(config.runDir);
if (config.role === 'nodes') {
  fail(
    'reload.sh',
    'this host runs nodes only (role nodes): reload the balancers',
    'KIT_ERR_USAGE',
  );
}
const pid = livePid(dir, 'nginx');
if (pid === undefined)
  fail(
    'reload.sh',
    `nginx of RUN_DIR=${dir.root} is not running; start the kit with ./scripts/up.sh`,
    'KIT_ERR_NOT_RUNNING',
  );

try {
  await renderNginx(config, dir);
} catch (error) {
  const message = `${(error as Error).message}; nginx keeps the configuration it runs`;
  fail('reload.sh', error instanceof KitError ? new KitError(error.code, message) : message);
}
const reload = await $({ nothrow: true, timeout: '15s' })`${NGINX_BIN} ${nginxArgs(dir)} -s reload`;
if (reload.exitCode !== 0) fail('reload.sh', `nginx -s reload failed: ${reload.stderr.trim()}`);
process.stdout.write(
  `nginx reloaded (master pid ${pid}) with ${join(config.runDir, 'nginx', 'nginx.conf')}\n`,
);
