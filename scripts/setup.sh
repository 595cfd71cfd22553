#!/usr/bin/env bash
# Installs what plugin-bridge needs on a fresh Debian machine, and nothing twice: system packages, the npm
# workspace, and the pinned nats-server (Debian's 2.9 silently ignores per-key TTL and limit markers).
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_VERSION=v2.14.9

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v git >/dev/null || need_apt+=(git)
command -v go >/dev/null || need_apt+=(golang-go)
command -v node >/dev/null || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt: installing ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "plugin-bridge needs Node.js 20 or newer; this is $(node --version)" >&2
  exit 1
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm: installing the workspace from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error
fi

nats_bin=.tools/bin/nats-server
if [ ! -x "$nats_bin" ] || ! "$nats_bin" --version 2>/dev/null | grep -q "${NATS_SERVER_VERSION#v}"; then
  say "go: installing nats-server $NATS_SERVER_VERSION into .tools/bin"
  mkdir -p .tools/bin
  GOBIN="$PWD/.tools/bin" GOFLAGS=-mod=mod go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
fi
