import type { RunningNode } from './server.ts';

/** Longest a drain may take before the node exits anyway (the contract allows 10 s). */
const DRAIN_LIMIT_MS = 8_000;

/**
 * SIGTERM or SIGINT: /readyz fails at once, the listener closes so nginx sends new clients to
 * the other nodes, every transport is closed so clients reconnect there, then exit 0.
 */
export function handleShutdown(node: RunningNode): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const started = Date.now();
    const connections = node.io.engine.clientsCount;
    node.app.log.info({ signal, connections }, 'draining');
    node.startDraining();
    const limit = setTimeout(() => {
      node.app.log.error({ afterMs: DRAIN_LIMIT_MS }, 'drain took too long, exiting');
      process.exit(1);
    }, DRAIN_LIMIT_MS);
    await node.app.close();
    await node.redis.close();
    clearTimeout(limit);
    node.app.log.info({ ms: Date.now() - started, connections }, 'drained, exiting');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
