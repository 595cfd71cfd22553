#!/usr/bin/env bash
# Lints the deployment files (deploy/, .dockerignore; docs/deploy.md says what they are). No image is built and
# no cluster is touched, and nothing is downloaded: the tools come from scripts/setup.sh.
#   1. yamllint over every YAML file in deploy/;
#   2. `kustomize build deploy/kubernetes`, validated by kubeconform -strict against the Kubernetes JSON schemas
#      of the oldest and the newest version the manifests are meant for (a missing schema is an error);
#   3. the NATS config from the rendered ConfigMap, parsed by the pinned nats-server (`-t`);
#   4. hadolint over the Dockerfiles, and every path they COPY from the context exists and is not ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

# 1.27: the first release with the kubelet's gRPC probes on by default and GA; the manifests use nothing newer.
# 1.37: the newest schemas the pinned kubernetes-validate ships.
KUBERNETES_VERSIONS=(1.27.0 1.37.0)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
bin=.tools/bin
venv=.tools/deploy-lint
for tool in "$bin/kubeconform" "$bin/kustomize" "$bin/nats-server" "$venv/bin/yamllint" "$venv/bin/hadolint"; do
  [ -x "$tool" ] || { echo "lint-deploy: $tool is missing; run scripts/setup.sh" >&2; exit 1; }
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

say "deploy: yamllint"
"$venv/bin/yamllint" --strict -c deploy/lint/yamllint.yaml deploy

say "deploy: every manifest in deploy/kubernetes is in kustomization.yaml"
# kustomize fails on a listed file that is missing, not on a file nobody listed.
listed=$("$venv/bin/python" -c 'import sys, yaml; print("\n".join(yaml.safe_load(open(sys.argv[1]))["resources"]))' \
  deploy/kubernetes/kustomization.yaml)
for file in deploy/kubernetes/*.yaml; do
  name=$(basename "$file")
  case "$name" in kustomization.yaml | nats-values.yaml) continue ;; esac
  grep -qxF "$name" <<<"$listed" || { echo "$file is not listed in deploy/kubernetes/kustomization.yaml" >&2; exit 1; }
done

say "deploy: kustomize build | kubeconform -strict (Kubernetes ${KUBERNETES_VERSIONS[*]})"
"$bin/kustomize" build deploy/kubernetes >"$scratch/rendered.yaml"
# kubernetes-validate's schemas refer to their shared definitions as "/api/_definitions.json" (resolved by its
# own loader); kubeconform follows $ref through files, so each copy points at its own file instead.
# find_spec locates the package without importing it (its code needs dependencies that are not installed).
schemas_root=$("$venv/bin/python" -c 'import importlib.util as u; print(u.find_spec("kubernetes_validate").submodule_search_locations[0])')
schemas_root="$schemas_root/kubernetes-json-schema"
for version in "${KUBERNETES_VERSIONS[@]}"; do
  source_dir="$schemas_root/v$version-local-strict"
  [ -d "$source_dir" ] || { echo "no schemas for Kubernetes $version in $schemas_root" >&2; exit 1; }
  cp -r "$source_dir" "$scratch/"
  sed -i "s#\"/api/_definitions.json#\"file://$scratch/v$version-local-strict/_definitions.json#g" \
    "$scratch/v$version-local-strict"/*.json
  "$bin/kubeconform" -strict -summary -kubernetes-version "$version" \
    -schema-location "$scratch/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    "$scratch/rendered.yaml"
done

say "deploy: nats-server -t on the NATS ConfigMap"
"$venv/bin/python" -c '
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "nats-config":
        sys.stdout.write(doc["data"]["nats.conf"])
' "$scratch/rendered.yaml" >"$scratch/nats.conf"
[ -s "$scratch/nats.conf" ] || { echo "no nats.conf in the rendered ConfigMap nats-config" >&2; exit 1; }
# POD_NAME is what the StatefulSet's downward API supplies; nats-server refuses an undefined variable.
POD_NAME=nats-0 "$bin/nats-server" -t -c "$scratch/nats.conf"

say "deploy: hadolint and COPY sources"
dockerfiles=(deploy/container/Dockerfile deploy/container/*.Dockerfile)
"$venv/bin/hadolint" --config deploy/lint/hadolint.yaml "${dockerfiles[@]}"
"$venv/bin/python" deploy/lint/copy_sources.py .dockerignore "${dockerfiles[@]}"
echo "deploy: all checks passed" >&2
