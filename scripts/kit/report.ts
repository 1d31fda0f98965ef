// How the scripts talk to a person: one-line failures on stderr, a progress line on slow work,
// aligned summaries.
import { relative } from 'node:path';
import { ROOT } from '../../services/node/config.ts';
import { ERRORS, type ErrorCode, KitError } from '../../services/node/errors.ts';
import { type KitConfig, loadKitConfig, readEnv, roleArgument } from './config.ts';
import { recordedRole, runDir } from './run-dir.ts';

/**
 * The one way a command gives up: `<command>: <CODE> <message>` on stderr, and the code's exit
 * status (services/node/errors.ts). A KitError brings its own code; anything else takes `code`.
 */
export function fail(
  command: string,
  problem: unknown,
  code: ErrorCode = 'KIT_ERR_INTERNAL',
): never {
  const known = problem instanceof KitError ? problem.code : code;
  const message = problem instanceof Error ? problem.message : String(problem);
  process.stderr.write(`${command}: ${known} ${message}\n`);
  process.exit(ERRORS[known].exit);
}

/**
 * The kit's configuration, or the script's one-line refusal naming the bad variable. The role is
 * `--role <role>`, else KIT_ROLE, else the one the kit running in RUN_DIR was started with, so
 * that status.sh, down.sh, reload.sh and restart.sh on a host act on what runs there.
 */
export function configOrFail(
  script: string,
  { args = process.argv.slice(2), lenient = false } = {},
): KitConfig {
  try {
    const env = readEnv();
    const flag = roleArgument(args);
    if (flag !== undefined) return loadKitConfig({ ...env, KIT_ROLE: flag });
    const config = loadKitConfig(env);
    if (env.KIT_ROLE?.trim()) return config;
    const recorded = recordedRole(runDir(config.runDir));
    if (recorded === undefined || recorded === config.role) return config;
    try {
      return loadKitConfig({ ...env, KIT_ROLE: recorded });
    } catch (error) {
      // down.sh stops what the pid files name: the role's other variables do not matter to it.
      if (lenient) return config;
      throw error;
    }
  } catch (error) {
    fail(script, error);
  }
}

/** A progress line: rewritten in place on a terminal, one line per change otherwise. */
export function progressLine(): (line: string) => void {
  if (!process.stderr.isTTY) return (line) => process.stderr.write(`  … ${line}\n`);
  return (line) => process.stderr.write(`\r\x1b[K  … ${line}`);
}

export function clearProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function shortPath(path: string): string {
  const rel = relative(ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

export function timestamped(line: string): string {
  return `${new Date().toISOString()} ${line}`;
}
