#!/usr/bin/env bash
# The whole test suite, as CI runs it: the contract checks (buf lint, format, breaking, generated code), the
# type check, the Go and Python kits' own tests, then every vitest test (unit, integration, conformance of every
# kit, the language matrix), against real nats-server, host and sidecar processes.
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

say "deployment files: yamllint, kustomize + kubeconform, nats-server -t, hadolint (scripts/lint-deploy.sh)"
bash scripts/lint-deploy.sh

say "generated code matches buf generate"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
bash scripts/generate.sh "$scratch"
for generated in gen/typescript/src sidecars/python/gen sidecars/go/gen; do
  if ! diff -r "$scratch/$generated" "$generated" >/dev/null; then
    diff -r "$scratch/$generated" "$generated" | head -40 >&2
    echo "generated code in $generated is stale: run 'npm run generate' and commit the result" >&2
    exit 1
  fi
done

say "tsc --noEmit"
node_modules/.bin/tsc --noEmit -p tsconfig.json

say "go vet and go test (sidecars/go)"
(cd sidecars/go && go vet ./... && go test -count=1 ./...)

say "pytest (sidecars/python)"
(cd sidecars/python && ../../.tools/venv/bin/python -m pytest -q)

say "vitest (host, TypeScript kit, conformance of every kit, language matrix)"
node_modules/.bin/vitest run "$@"

# The benchmarks' quick mode: it fails only when a run breaks (errors, lost executions), never on timing; the
# numbers it prints are for reading, docs/benchmarks.md holds the full mode's.
if [ "$#" -eq 0 ]; then
  say "benchmarks, quick mode"
  node --import tsx bench/run.ts --quick
fi
