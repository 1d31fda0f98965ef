// The environment for a kit that a test or the bench starts beside whatever an operator runs.
// Every option the kit reads is set, to the caller's value or to '' (which config.ts reads as
// unset, so the default applies): neither the caller's shell nor a .env file at the root can
// point that kit at the operator's Redis (REDIS_URL), ports or RUN_DIR.
import { OPTIONS } from './config.ts';

export function isolatedKitEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const unset = Object.fromEntries(Object.keys(OPTIONS).map((name) => [name, '']));
  return { ...process.env, ...unset, ...env };
}
