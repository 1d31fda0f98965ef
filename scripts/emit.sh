#!/usr/bin/env bash
# Door into scripts/emit.ts; kit/door.sh installs npm dependencies first when they are missing.
exec "$(dirname "$0")/kit/door.sh" emit "$@"
