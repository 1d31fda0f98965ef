// The catalogue of error codes is the operator's reference for exit statuses: README must say
// what services/node/errors.ts does, and fail() must print the code it exits with.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { ROOT } from '../../services/node/config.ts';
import { ERRORS } from '../../services/node/errors.ts';

it('README error table matches services/node/errors.ts', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const rows = readme.split('\n').filter((l) => /^\| `KIT_ERR_[A-Z_]+` \|/.test(l));
  const expected = Object.entries(ERRORS).map(
    ([code, e]) => `| \`${code}\` | ${e.exit} | ${e.meaning} |`,
  );
  assert.deepEqual(rows, expected);
});

it('a command that fails prints its code and exits with its status', () => {
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      "const { fail } = await import('./scripts/kit/report.ts'); const { ConfigError } = await import('./services/node/config.ts'); fail('up.sh', new ConfigError('PORT', '0', 'port 0 is out of range'));",
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(run.status, ERRORS.KIT_ERR_CONFIG.exit);
  assert.equal(run.stderr.trim(), 'up.sh: KIT_ERR_CONFIG PORT="0": port 0 is out of range');
});
