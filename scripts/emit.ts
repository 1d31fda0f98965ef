// ./scripts/emit.sh <event> [json-data] [--room <room>]: emits to every client of the kit, or to
// one room, from a process that is not a node, through @socket.io/redis-emitter. Chat rooms are
// `room:<name>`; a user's sockets share the room named by its userID.
import { parseArgs } from 'node:util';
import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';
import { ADAPTER_KEY } from '../services/node/socket-options.ts';
import { existingRedisUrl } from './kit/redis-server.ts';
import { configOrFail, fail } from './kit/report.ts';
import { runDir } from './kit/run-dir.ts';

const usage = 'usage: ./scripts/emit.sh <event> [json-data] [--room <room>]';
let parsed: ReturnType<
  typeof parseArgs<{ options: { room: { type: 'string' } }; allowPositionals: true }>
>;
try {
  parsed = parseArgs({ options: { room: { type: 'string' } }, allowPositionals: true });
} catch (error) {
  fail('emit.sh', `${(error as Error).message} (${usage})`, 'KIT_ERR_USAGE');
}
const [event, rawData] = parsed.positionals;
if (!event) fail('emit.sh', usage, 'KIT_ERR_USAGE');
let data: unknown;
try {
  data = rawData === undefined ? undefined : JSON.parse(rawData);
} catch {
  data = rawData;
}

const config = configOrFail('emit.sh');
if (config.adapter !== 'redis') {
  fail(
    'emit.sh',
    `speaks the pub/sub adapter only (ADAPTER=${config.adapter}); send POST /api/emit to the kit instead`,
    'KIT_ERR_USAGE',
  );
}
const url =
  config.redisUrl ??
  existingRedisUrl(config, runDir(config.runDir)) ??
  fail(
    'emit.sh',
    `the kit's Redis was never started in RUN_DIR=${config.runDir}; start the kit with ./scripts/up.sh`,
    'KIT_ERR_NOT_RUNNING',
  );
const redis = createClient({ url, socket: { connectTimeout: 3000, reconnectStrategy: false } });
redis.on('error', () => {});
try {
  await redis.connect();
} catch (error) {
  fail('emit.sh', `cannot reach Redis: ${(error as Error).message}`, 'KIT_ERR_REDIS');
}
const emitter = new Emitter(redis, { key: ADAPTER_KEY });
const target = parsed.values.room ? emitter.to(parsed.values.room) : emitter;
target.emit(event, data);
await redis.quit();
process.stdout.write(
  `emitted "${event}" to ${parsed.values.room ? `room ${parsed.values.room}` : 'every client'}\n`,
);
