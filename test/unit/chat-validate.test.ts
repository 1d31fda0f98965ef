// The chat's input checks: usernames that cannot disguise themselves, and paging requests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as check from '../../services/chat/validate.ts';

describe('chat usernames', () => {
  it('accepts 1 to 32 characters after trimming, NFC-normalized', () => {
    assert.deepEqual(check.username('  alice '), { ok: true, value: 'alice' });
    assert.deepEqual(check.username('x'.repeat(32)), { ok: true, value: 'x'.repeat(32) });
    // "e" + combining acute becomes the one character "é".
    assert.deepEqual(check.username('Rene\u0301'), { ok: true, value: 'Ren\u00e9' });
    assert.deepEqual(check.username('Zoë 李'), { ok: true, value: 'Zoë 李' });
  });

  it('refuses control and format characters, wherever they are', () => {
    const hidden = [
      '\u202E', // right-to-left override
      '\u202D',
      '\u200B', // zero-width space
      '\u200D', // zero-width joiner
      '\uFEFF', // byte order mark
      '\u2066', // left-to-right isolate … pop directional isolate
      '\u2067',
      '\u2068',
      '\u2069',
      '\u00AD', // soft hyphen
      '\u0000',
      '\u0007',
      '\u001B',
      '\u007F',
      '\u0085',
    ];
    for (const char of hidden) {
      for (const name of [`ad${char}min`, `${char}admin`, `admin${char}`]) {
        assert.deepEqual(
          check.username(name),
          { ok: false, error: 'invalid username' },
          `U+${char.codePointAt(0)?.toString(16).padStart(4, '0')}`,
        );
      }
    }
    assert.equal(check.username('line\nbreak').ok, false);
    assert.equal(check.username('tab\there').ok, false);
  });

  it('refuses what is not 1 to 32 characters or not a string', () => {
    for (const bad of ['', '   ', 'x'.repeat(33), 42, null, undefined, ['alice'], { a: 1 }]) {
      assert.deepEqual(check.username(bad), { ok: false, error: 'invalid username' });
    }
  });
});

describe('chat paging requests', () => {
  it('takes { with, before? } and { room, before? }', () => {
    assert.deepEqual(check.privateMessagesPage({ with: 'u1' }), {
      ok: true,
      value: { with: 'u1', before: undefined },
    });
    assert.deepEqual(check.privateMessagesPage({ with: 'u1', before: 'm1' }), {
      ok: true,
      value: { with: 'u1', before: 'm1' },
    });
    assert.deepEqual(check.roomHistoryPage({ room: ' lobby ', before: 'm1' }), {
      ok: true,
      value: { room: 'lobby', before: 'm1' },
    });
  });

  it('refuses ids that are not 1 to 64 characters, and bad rooms', () => {
    const bad: unknown[] = [
      null,
      'u1',
      {},
      { with: '' },
      { with: 'x'.repeat(65) },
      { with: 7 },
      { with: 'u1', before: 'x'.repeat(65) },
      { with: 'u1', before: '' },
      { with: 'u1', before: { $gt: '' } },
    ];
    for (const payload of bad) assert.equal(check.privateMessagesPage(payload).ok, false);
    for (const payload of [
      { room: '../etc' },
      { room: 'x'.repeat(65) },
      { room: 'lobby', before: 5 },
      ['lobby'],
    ]) {
      assert.equal(check.roomHistoryPage(payload).ok, false);
    }
  });
});
