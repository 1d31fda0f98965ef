// One node: Fastify + Socket.IO + Redis adapter, started by the supervisor (scripts/up.sh).
import { loadNodeConfig } from './config.ts';
import { ERRORS, KitError } from './errors.ts';
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
  // A node refused to start says why in its log, with the code's exit status (errors.ts).
  const known = error instanceof KitError;
  process.stderr.write(`${known ? `${error.code} ${error.message}` : (error as Error).stack}\n`);
  process.exit(known ? ERRORS[error.code].exit : 1);
}
