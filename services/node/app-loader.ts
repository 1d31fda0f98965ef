import { pathToFileURL } from 'node:url';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Server } from 'socket.io';
import { KitError } from './errors.ts';
import type { Redis } from './redis.ts';

/** What `APP_MODULE`'s default export receives, once per node. */
export interface AppContext {
  readonly io: Server;
  readonly app: FastifyInstance;
  readonly redis: Redis;
  readonly nodeId: string;
  readonly log: FastifyBaseLogger;
}

export type Application = (context: AppContext) => void | Promise<void>;

export class AppModuleError extends KitError {
  constructor(
    path: string,
    /** What is wrong, without the path: up.sh's check names APP_MODULE itself. */
    readonly reason: string,
  ) {
    super('KIT_ERR_APP_MODULE', `APP_MODULE="${path}" ${reason}`);
  }
}

export async function loadApplication(path: string): Promise<Application> {
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (error) {
    throw new AppModuleError(path, `failed to load: ${(error as Error).message}`);
  }
  // A .ts file outside a `"type": "module"` package loads as CommonJS, where the default export
  // arrives one level down.
  const candidate =
    typeof mod.default === 'object' && mod.default !== null && 'default' in mod.default
      ? (mod.default as { default: unknown }).default
      : mod.default;
  if (typeof candidate !== 'function') {
    throw new AppModuleError(path, `has no default export function (got ${typeof candidate})`);
  }
  return candidate as Application;
}
