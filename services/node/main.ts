// One node: Fastify + Socket.IO + Redis adapter, started by the supervisor (scripts/up.sh).
import { AppModuleError } from './app-loader.ts';
import { ConfigError, loadNodeConfig } from './config.ts';
import { startNode } from './server.ts';
import { handleShutdown } from './shutdown.ts';

try {
  const node = await startNode(loadNodeConfig());
  handleShutdown(node);
  // A stray rejection in application code is logged and counted; it must not take the node
  // and all its clients down. An uncaught exception leaves state unknown: exit, and the
  // supervisor starts the node again.
  process.on('unhandledRejection', (reason) => {
    node.metrics.unhandledErrors.inc();
    node.app.log.error({ err: reason }, 'unhandled rejection');
  });
  process.on('uncaughtException', (error) => {
    node.app.log.fatal({ err: error }, 'uncaught exception, exiting');
    process.exit(1);
  });
} catch (error) {
  const known = error instanceof ConfigError || error instanceof AppModuleError;
  process.stderr.write(`${known ? (error as Error).message : (error as Error).stack}\n`);
  process.exit(known ? 78 : 1);
}
