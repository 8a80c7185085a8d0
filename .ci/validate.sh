#!/usr/bin/env bash
# CI stage: the offline validators for the container and Kubernetes files (../shared/container/tools.sh):
# hadolint on the Dockerfile, `docker compose config` on docker-compose.yml (with and without the train profile, and
# with CI's host-network override) and kubernetes-validate --strict on k8s/. The image and the compose stack
# themselves run on a real Docker engine in .ci/compose.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

log() { echo "validate: $*"; }
die() { echo "validate: FAIL: $*" >&2; exit 1; }

eval "$(../shared/container/tools.sh)"
hadolint Dockerfile && log "hadolint: Dockerfile clean"
docker compose -f docker-compose.yml config -q
docker compose -f docker-compose.yml --profile train config -q
docker compose -f docker-compose.yml -f .ci/docker-compose.host.yml --profile train config -q
log "docker compose config: docker-compose.yml (with and without the train profile) and the CI override valid"
rendered=$(mktemp --suffix=.yaml)
if command -v kubectl >/dev/null; then
  kubectl kustomize k8s/ >"$rendered"
  log "k8s/: rendered with kubectl kustomize"
else  # no kustomize offline: validate the resources the kustomization lists, as they are
  "$PY" -c 'import sys, yaml
for name in yaml.safe_load(open("k8s/kustomization.yaml"))["resources"]:
  print("---"); print(open(f"k8s/{name}").read())' >"$rendered"
  log "k8s/: no kubectl; validating the kustomization's resources unrendered"
fi
kubernetes-validate --strict --quiet "$rendered" || { rm -f "$rendered"; die "kubernetes-validate --strict"; }
log "kubernetes-validate --strict: $(grep -c '^kind:' "$rendered") resources valid"
rm -f "$rendered"
