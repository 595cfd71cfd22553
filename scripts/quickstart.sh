#!/usr/bin/env bash
# The quick start: install what is missing, then bring up the host (with its own nats-server), every example
# sidecar, and run sample tasks to completion. Arguments go to scripts/dev.ts (--exit, --port, --nats-port).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx scripts/dev.ts "$@"
