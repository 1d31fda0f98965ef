// The Admin UI's per-second packet and byte counts survive the cheaper bookkeeping that replaces
// the package's own on the hot path (services/node/admin.ts).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { Server } from 'socket.io';
import { instrumentAdmin, TallyingEventBuffer } from '../../services/node/admin.ts';
import { hashAdminPassword } from '../../services/node/admin-auth.ts';
import type { Redis } from '../../services/node/redis.ts';

describe('Admin UI statistics', () => {
  it('replaces the package buffer on the installed admin-ui', async () => {
    const io = new Server(createServer());
    instrumentAdmin(io, {} as Redis, 'node-1', hashAdminPassword('a-test-admin-password'));
    const buffer = (io as unknown as { _eventBuffer: unknown })._eventBuffer;
    assert.ok(buffer instanceof TallyingEventBuffer, 'admin-ui no longer keeps io._eventBuffer');
    io.close();
  });

  it('hands over closed seconds of packet counts and passes other events through', () => {
    const passed: unknown[][] = [];
    const inner = {
      push: (...args: unknown[]) => void passed.push(args),
      getValuesAndClear: () => [{ timestamp: 0, type: 'rawConnection', count: 1 }],
    };
    const buffer = new TallyingEventBuffer(inner);
    for (let i = 0; i < 3; i++) {
      buffer.push('packetsOut', undefined);
      buffer.push('bytesOut', undefined, 40);
    }
    buffer.push('rawConnection');
    assert.deepEqual(passed, [['rawConnection', undefined, 1]]);
    assert.deepEqual(
      buffer.getValuesAndClear().map((e) => e.type),
      ['rawConnection'],
      'an open second is not handed over',
    );
    buffer.roll(Date.UTC(2026, 10, 21, 8, 0, 1, 500));
    buffer.push('packetsIn', undefined);
    const second = Date.UTC(2026, 10, 21, 8, 0, 0);
    assert.deepEqual(
      buffer.getValuesAndClear().filter((e) => e.type !== 'rawConnection'),
      [
        { timestamp: second, type: 'packetsOut', count: 3 },
        { timestamp: second, type: 'bytesOut', count: 120 },
      ],
    );
    buffer.roll(Date.UTC(2026, 10, 21, 8, 0, 2, 500));
    assert.deepEqual(
      buffer.getValuesAndClear().filter((e) => e.type === 'packetsIn'),
      [{ timestamp: second + 1000, type: 'packetsIn', count: 1 }],
    );
  });
});
