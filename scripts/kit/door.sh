#!/usr/bin/env bash
# The one door behind every scripts/*.sh: make sure npm dependencies match package-lock.json
# (a fresh clone has none), then run scripts/<name>.ts under tsx.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
name="$1"
shift
cd "$root"
command -v node >/dev/null || { echo "${name}: Node.js 22 or 24 is required (https://nodejs.org)" >&2; exit 1; }
# Node 20 reached its end of life in April 2026: it still works, but gets no security fixes.
major="$(node --version)"; major="${major#v}"; major="${major%%.*}"
if [ "$major" -lt 22 ]; then
  echo "note: Node ${major} is past its end of life; the kit supports Node 22 and 24" >&2
fi
stamp=node_modules/.kit-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "  … installing npm dependencies (npm ci)" >&2
  # Install scripts are off (.npmrc explains why); --no-audit/--no-fund keep it quiet.
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi
exec node --import tsx "scripts/${name}.ts" "$@"
