#!/usr/bin/env bash
# Door into scripts/bench.ts (npm run bench); kit/door.sh installs npm dependencies first.
exec "$(dirname "$0")/kit/door.sh" bench "$@"
