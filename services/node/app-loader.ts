import { pathToFileURL } from 'node:url';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Server } from 'socket.io';
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

export class AppModuleError extends Error {
  readonly code = 'KIT_ERR_APP_MODULE';
}

export async function loadApplication(path: string): Promise<Application> {
  let mod: { default?: unknown };
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (error) {
    throw new AppModuleError(`APP_MODULE="${path}" failed to load: ${(error as Error).message}`);
  }
  if (typeof mod.default !== 'function') {
    throw new AppModuleError(
      `APP_MODULE="${path}" has no default export function (got ${typeof mod.default})`,
    );
  }
  return mod.default as Application;
}
