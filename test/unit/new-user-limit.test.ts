// Budgets per address (new chat users, new sessions, failed logins): a burst, then a slow
// refill, in a bounded map.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NEW_USERS } from '../../services/chat/index.ts';
import { KeyedLimiter } from '../../services/node/rate-limit.ts';

describe('new users per address', () => {
  it('allows a burst per address, then refuses; other addresses are untouched', () => {
    const limit = new KeyedLimiter(NEW_USERS.perSecond, NEW_USERS.burst, NEW_USERS.addresses);
    const taken = Array.from({ length: NEW_USERS.burst + 20 }, () => limit.take('10.0.0.1'));
    assert.equal(taken.filter(Boolean).length, NEW_USERS.burst);
    assert.equal(taken.at(-1), false);
    assert.equal(limit.take('10.0.0.2'), true);
  });

  it('keeps the map bounded, forgetting refilled addresses first', () => {
    const limit = new KeyedLimiter(1, 2, 100);
    for (let i = 0; i < 1_000; i++) limit.take(`10.0.${i >> 8}.${i & 255}`);
    assert.ok(limit.size <= 100, `${limit.size} addresses tracked`);
  });
});
