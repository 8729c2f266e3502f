#!/usr/bin/env bash
# Validates every manifest under deploy/k8s without a cluster:
#   - Kubernetes objects against the Kubernetes 1.37 OpenAPI schemas, strictly (unknown fields are errors), with
#     kubernetes-validate (PyPI, in a virtual environment under .scenequeue/k8s-tools);
#   - KEDA objects (ScaledObject, TriggerAuthentication) against the schemas generated from KEDA's API types
#     (npm @kubernetes-models/keda), by scripts/k8s-validate-keda.mjs;
#   - kustomization.yaml lists every manifest of the directory, and nothing else.
# It cannot tell whether a cluster would run them (images, secrets, volumes, the GPU operator, KEDA itself).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

K8S_VALIDATE=1.37.0   # PyPI kubernetes-validate: bundles the Kubernetes schemas up to 1.37
KEDA_MODELS=2.0.0     # npm @kubernetes-models/keda
YAML=2.9.1            # npm yaml
tools=.scenequeue/k8s-tools
dir=deploy/k8s

command -v python3 >/dev/null || apt_install python3
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v npm >/dev/null || apt_install npm
mkdir -p "$tools"
if [ ! -x "$tools/venv/bin/kubernetes-validate" ]; then
  say "installing kubernetes-validate $K8S_VALIDATE"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q "kubernetes-validate==$K8S_VALIDATE" || die "pip could not install kubernetes-validate"
fi
if [ ! -d "$tools/node_modules/@kubernetes-models/keda" ]; then
  say "installing @kubernetes-models/keda $KEDA_MODELS"
  (cd "$tools" && npm install --silent --no-audit --no-fund --no-save "@kubernetes-models/keda@$KEDA_MODELS" "yaml@$YAML") \
    || die "npm could not install @kubernetes-models/keda"
fi

manifests=()
for f in "$dir"/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
listed=$(sed -n 's/^  - \(.*\.yaml\)$/\1/p' "$dir/kustomization.yaml" | sort | tr '\n' ' ')
present=$(for f in "${manifests[@]}"; do basename "$f"; done | sort | tr '\n' ' ')
[ "$listed" = "$present" ] || die "kustomization.yaml lists '$listed' but the directory holds '$present'"
say "kustomization.yaml lists all ${#manifests[@]} manifests"

core=()
for f in "${manifests[@]}"; do
  grep -q '^apiVersion: keda.sh/' "$f" || core+=("$f")
done
"$tools/venv/bin/kubernetes-validate" --strict -k 1.37.0 "${core[@]}" || die "a Kubernetes object is invalid"
cp scripts/k8s-validate-keda.mjs "$tools/validate-keda.mjs"
node "$tools/validate-keda.mjs" "${manifests[@]}" || die "a KEDA object is invalid"
say "every manifest under $dir is valid"
