#!/usr/bin/env bash
# The whole test suite, as CI runs it: the contract checks (buf lint, format, breaking, generated code), the
# type check, then every test (unit and integration, against real nats-server and sidecar processes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
export BUF_CACHE_DIR="${BUF_CACHE_DIR:-$PWD/.tools/buf-cache}"
buf=node_modules/.bin/buf

say "buf lint"
$buf lint
say "buf format --exit-code"
$buf format --diff --exit-code
if git rev-parse --verify -q main >/dev/null && git ls-tree -d main proto >/dev/null 2>&1 && [ -n "$(git ls-tree main proto)" ]; then
  say "buf breaking against main"
  $buf breaking --against '.git#branch=main'
fi

say "generated code matches buf generate"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
$buf generate --output "$scratch"
if ! diff -r "$scratch/gen/typescript/src" gen/typescript/src >/dev/null; then
  diff -r "$scratch/gen/typescript/src" gen/typescript/src | head -40 >&2
  echo "generated code is stale: run 'npm run generate' and commit the result" >&2
  exit 1
fi

say "tsc --noEmit"
node_modules/.bin/tsc --noEmit -p tsconfig.json

say "vitest"
node_modules/.bin/vitest run "$@"
