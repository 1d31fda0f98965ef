// Renders nginx/nginx.conf.template. Only ${UPPER_CASE} names the renderer is given are filled
// in; nginx's own $variables (and ${lower_case} ones) are left alone, and an unknown
// ${UPPER_CASE} placeholder is an error rather than an empty string in a live config.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../services/node/config.ts';
import { KitError } from '../../services/node/errors.ts';
import type { KitConfig } from './config.ts';
import type { RunDir } from './run-dir.ts';
import { createNew, writeAtomic } from './safe-files.ts';
import { upstreamServers } from './upstream.ts';

const run = promisify(execFile);

export const TEMPLATE = join(ROOT, 'nginx', 'nginx.conf.template');
export const TLS_TEMPLATE = join(ROOT, 'nginx', 'tls.conf.template');
export const NGINX_BIN = '/usr/sbin/nginx';
/** Descriptors kept back from worker_connections for logs, listeners and the like. */
const RESERVED_FDS = 200;
/** Client connections NGINX_WORKERS=auto sizes nginx to hold. */
export const AUTO_CONNECTIONS = 50_000;
/** Workers beyond one per core, for the open-files limit, at most this many in all. */
const MAX_AUTO_WORKERS = 16;

/**
 * NGINX_WORKERS=auto: one worker per core, and as many more as it takes to hold AUTO_CONNECTIONS
 * under the per-process open-files limit (up to 16 workers: a limit under about 6,500 holds
 * fewer). Each proxied connection holds two descriptors (client and node), so under a 20,000
 * limit a worker carries 9,900 clients and 50,000 need 6 workers. Measured on 2 cores: 4 workers
 * held about 39,600 connections.
 */
export function autoWorkers(rlimit: number, cores = availableParallelism()): number {
  const perWorker = Math.floor((rlimit - RESERVED_FDS) / 2);
  if (perWorker < 50) {
    throw new KitError(
      'KIT_ERR_CONFIG',
      `the open-files limit (ulimit -Hn) is ${rlimit}: nginx needs at least ${RESERVED_FDS + 100} to proxy any connections`,
    );
  }
  const needed = Math.ceil(AUTO_CONNECTIONS / perWorker);
  return Math.max(cores, Math.min(MAX_AUTO_WORKERS, needed));
}

export function renderTemplate(template: string, vars: Readonly<Record<string, string>>): string {
  const unknown: string[] = [];
  const out = template.replace(
    /\$\{([A-Z][A-Z0-9_]*)\}/g,
    (match, name: string, offset: number) => {
      const value = vars[name];
      if (value === undefined) {
        const line = template.slice(0, offset).split('\n').length;
        unknown.push(`${match} (line ${line})`);
        return match;
      }
      return value;
    },
  );
  if (unknown.length > 0) {
    throw new KitError(
      'KIT_ERR_TEMPLATE',
      `unknown placeholder ${unknown.join(', ')} in the nginx template`,
    );
  }
  return out;
}

/** The open-files limit this process (and so nginx, started by it) runs under. */
export async function openFilesLimit(): Promise<number> {
  const { stdout } = await run('sh', ['-c', 'ulimit -Hn']);
  const hard = stdout.trim();
  return hard === 'unlimited' ? 65536 : Math.min(Number(hard), 65536);
}

/** `server` lines as they stand in the template's upstream blocks. */
const indented = (lines: readonly string[]) => lines.map((line) => `        ${line}`).join('\n');

export async function nginxVariables(
  config: KitConfig,
  dir: RunDir,
): Promise<Record<string, string>> {
  const rlimit = await openFilesLimit();
  return {
    PORT: String(config.port),
    LISTEN_TLS: config.tls ? 'ssl http2 ' : '',
    NGINX_WORKERS: String(
      config.nginxWorkers === 'auto' ? autoWorkers(rlimit) : config.nginxWorkers,
    ),
    WORKER_RLIMIT_NOFILE: String(rlimit),
    WORKER_CONNECTIONS: String(rlimit - RESERVED_FDS),
    NGINX_DIR: dir.nginx,
    LOG_DIR: dir.logs,
    UPSTREAM_SERVERS: indented(upstreamServers(config, dir, 'passive')),
    UPGRADE_SERVERS: indented(upstreamServers(config, dir, 'none')),
  };
}

export function nginxArgs(dir: RunDir, conf = join(dir.nginx, 'nginx.conf')): string[] {
  // -e: nginx writes to its compiled-in error log before it reads the config; point it here.
  return ['-p', `${dir.nginx}/`, '-c', conf, '-e', join(dir.logs, 'nginx-error.log')];
}

/** `nginx -t` on a rendered file; throws with nginx's own explanation when it fails. */
export async function testNginxConfig(dir: RunDir, conf: string): Promise<void> {
  try {
    await run(NGINX_BIN, ['-t', '-q', ...nginxArgs(dir, conf)], { timeout: 15_000 });
  } catch (error) {
    const stderr = ((error as { stderr?: string }).stderr ?? '').trim();
    throw new KitError(
      'KIT_ERR_TEMPLATE',
      `nginx -t rejected the rendered configuration: ${stderr || (error as Error).message}`,
    );
  }
}

/** nginx/tls.conf.template filled in, or nothing to include when TLS is off. */
function renderTls(config: KitConfig): string {
  if (config.tls === undefined) return '# TLS is off (TLS_CERT and TLS_KEY unset).\n';
  return renderTemplate(readFileSync(TLS_TEMPLATE, 'utf8'), {
    TLS_CERT: config.tls.cert,
    TLS_KEY: config.tls.key,
  });
}

/**
 * Renders the templates to candidate files, checks them with `nginx -t`, and only then moves them
 * into place: a broken template never replaces a working configuration.
 */
export async function renderNginx(
  config: KitConfig,
  dir: RunDir,
  template = TEMPLATE,
): Promise<string> {
  const variables = await nginxVariables(config, dir);
  const tls = join(dir.nginx, 'tls.conf');
  const render = (tlsConf: string) =>
    renderTemplate(readFileSync(template, 'utf8'), { ...variables, TLS_CONF: tlsConf });
  const candidates = { conf: join(dir.nginx, 'nginx.conf.candidate'), tls: `${tls}.candidate` };
  for (const [path, content] of [
    [candidates.tls, renderTls(config)],
    [candidates.conf, render(candidates.tls)],
  ] as const) {
    rmSync(path, { force: true });
    createNew(path, content, 0o644);
  }
  await testNginxConfig(dir, candidates.conf);
  writeAtomic(tls, renderTls(config));
  const target = join(dir.nginx, 'nginx.conf');
  writeAtomic(target, render(tls));
  return target;
}
