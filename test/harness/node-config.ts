// A whole node configuration for tests of the kit → node handover, with what a test varies.
import type { NodeConfig } from '../../services/node/config.ts';

export function aNodeConfig(overrides: Partial<NodeConfig> = {}): NodeConfig {
  return {
    nodeId: 'node-6001',
    port: 6001,
    host: '127.0.0.1',
    socketPath: undefined,
    balancers: undefined,
    redisUrl: 'redis://127.0.0.1:6380',
    redisCluster: undefined,
    adapter: 'redis',
    recovery: undefined,
    appModule: '/srv/app/index.ts',
    emitToken: 'x'.repeat(32),
    adminPasswordHash: undefined,
    allowedOrigins: undefined,
    heartbeatS: 2,
    logLevel: 'warn',
    ...overrides,
  };
}
