// The README's configuration table is the operator's reference; it must say what the code does.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { OPTIONS } from '../../scripts/kit/config.ts';
import { ROOT } from '../../services/node/config.ts';

it('README configuration table matches scripts/kit/config.ts', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  // Rows of variables (the error codes' table has rows of the same shape).
  const rows = readme.split('\n').filter((l) => /^\| `(?!KIT_ERR_)[A-Z_]+` \|/.test(l));
  const expected = Object.entries(OPTIONS).map(
    ([name, o]) =>
      `| \`${name}\` | ${o.default === undefined ? 'unset' : `\`${o.default}\``} | ${o.doc} |`,
  );
  assert.deepEqual(rows, expected);
});
