#!/usr/bin/env bash
# npm test: the same preflight as up.sh (npm dependencies; nginx, redis-server and, for the
# browser tests, chromium from the OS packages), then format/lint, type check, and every test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/kit/door.sh preflight --browser
echo "── biome (format + lint)"
node_modules/.bin/biome check .
echo "── tsc --noEmit"
node_modules/.bin/tsc --noEmit
echo "── node --test"
mapfile -t files < <(find test -name '*.test.ts' | sort)
# One file at a time: each integration file runs a whole kit, and the machine has two cores.
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
