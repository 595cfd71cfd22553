#!/usr/bin/env bash
# All generated code, as `npm run generate` writes it and CI checks it (scripts/test.sh, with an output folder):
# our contract for TypeScript (buf.gen.yaml) and for the Python and Go kits
# (buf.gen.kits.yaml), then Flyte's agent protocol from flyteidl's published .proto files (buf.gen.flyte.yaml) and
# its connector protocol from flyteidl2's published descriptors (buf.gen.flyte2.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
export BUF_CACHE_DIR="${BUF_CACHE_DIR:-$PWD/.tools/buf-cache}"
buf=node_modules/.bin/buf
output=(${1:+--output "$1"})

# The TypeScript folder is shared by three templates, so none cleans it: a file whose proto is gone goes here.
rm -rf "${1:-.}/gen/typescript/src"
$buf generate "${output[@]}"
$buf generate --template buf.gen.kits.yaml "${output[@]}"
$buf generate --config buf.flyte.yaml --template buf.gen.flyte.yaml "${output[@]}"
image=$(mktemp --suffix=.binpb)
trap 'rm -f "$image"' EXIT
node --import tsx scripts/flyteidl2-descriptors.ts "$image"
# Well-known types come with protobuf-es; google/api is generated once, by the template above.
$buf generate "$image" --template buf.gen.flyte2.yaml --exclude-path google/protobuf --exclude-path google/api "${output[@]}"
