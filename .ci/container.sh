#!/usr/bin/env bash
# CI stages for the container, compose and Kubernetes files; .ci/run calls each as its own timed stage.
#   .ci/container.sh validate   hadolint, docker compose config, kubernetes-validate --strict on k8s/ rendered
#   .ci/container.sh image      build the image from the unchanged Dockerfile with podman, run it read-only as its
#                               non-root user, wait for /healthz, post real MNIST PNGs, run its HEALTHCHECK, stop
#   .ci/container.sh compose    the same image through docker-compose.yml (+ docker-compose.ci.yml) with podman-compose
# This machine has no Docker engine and no registry: ../shared/container/ sets up podman and the validators.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=$(cd ../shared/container && pwd)
IMAGE=${MNIST_CI_IMAGE:-mnist-api:ci}
PY=.venv/bin/python
START_TIMEOUT=180  # seconds from `podman run` to /healthz; TensorFlow's import dominates

log() { echo "container: $*"; }
die() { echo "container: FAIL: $*" >&2; exit 1; }

podman_env() { eval "$("$SHARED/prepare.sh")"; }
tools_env() { eval "$("$SHARED/tools.sh")"; }

# 8000 when free, else any free port: the machine is shared and the README's port may be taken.
pick_port() {
  "$PY" -c 'import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 8000))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_healthy CONTAINER PORT: poll /healthz until it answers; prints the seconds it took.
wait_healthy() {
  local name=$1 port=$2 start
  start=$(date +%s.%N)
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
    if [ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" != true ]; then
      podman logs "$name" 2>&1 | tail -30
      die "$name stopped before /healthz answered"
    fi
    if (($(echo "$(date +%s.%N) - $start > $START_TIMEOUT" | bc))); then
      podman logs "$name" 2>&1 | tail -30
      die "$name: /healthz not answering after ${START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  log "$name: /healthz answered $(echo "$(date +%s.%N) - $start" | bc | xargs printf '%.1f') s after start"
}

# check_running CONTAINER PORT: what both the plain run and the compose run must show.
check_running() {
  local name=$1 port=$2 uid
  uid=$(podman exec "$name" id -u)
  [ "$uid" != 0 ] || die "$name runs as root"
  log "$name: runs as uid $uid"
  if podman exec "$name" sh -c 'touch /app/write-test' 2>/dev/null; then die "$name: root filesystem is writable"; fi
  log "$name: root filesystem is read-only"
  "$PY" .ci/probe.py "http://127.0.0.1:$port"
  podman healthcheck run "$name" >/dev/null || die "$name: HEALTHCHECK failed"
  log "$name: HEALTHCHECK passed (podman healthcheck run)"
}

validate() {
  tools_env
  hadolint Dockerfile && log "hadolint: Dockerfile clean"
  docker compose -f docker-compose.yml config -q
  docker compose -f docker-compose.yml --profile train config -q
  MNIST_CI_PORT=8000 docker compose -f docker-compose.yml -f docker-compose.ci.yml config -q
  log "docker compose config: docker-compose.yml (with and without the train profile) and the CI override valid"
  local rendered
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
}

image() {
  podman_env
  local name=mnist-api-ci-$$ port
  podman build --network host --pull=never --format docker --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" .
  log "image $IMAGE: $(podman image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=si --round=nearest) ($(podman image inspect -f '{{.Size}}' "$IMAGE") bytes)"
  port=$(pick_port)
  trap 'podman rm -f -t 2 '"$name"' >/dev/null 2>&1 || true' EXIT
  podman run -d --name "$name" --network host --read-only --cap-drop ALL --security-opt no-new-privileges \
    -e PORT="$port" "$IMAGE" >/dev/null
  wait_healthy "$name" "$port"
  check_running "$name" "$port"
  podman stop -t 35 "$name" >/dev/null
  log "$name: stopped (exit code $(podman inspect -f '{{.State.ExitCode}}' "$name"))"
}

compose() {
  podman_env
  tools_env
  unset DOCKER_CONFIG  # tools.sh's, for `docker compose`; podman would look for registry logins there
  podman image exists "$IMAGE" || die "no image $IMAGE: run '.ci/container.sh image' first"
  local port project=mnist-ci-$$
  port=$(pick_port)
  local -a cmd=(podman-compose -p "$project" -f docker-compose.yml -f docker-compose.ci.yml)
  export MNIST_CI_IMAGE=$IMAGE MNIST_CI_PORT=$port
  trap '"${cmd[@]}" down -t 5 >/dev/null 2>&1 || true' EXIT
  "${cmd[@]}" up -d --no-build api
  local name
  name=$(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' | head -1)
  [ -n "$name" ] || die "podman-compose started no container"
  wait_healthy "$name" "$port"
  check_running "$name" "$port"
  podman inspect -f '{{range .Mounts}}{{.Destination}} rw={{.RW}} {{end}}' "$name" | grep -q '/app/models rw=false' \
    || die "$name: ./models is not mounted read-only at /app/models"
  log "$name: ./models mounted read-only at /app/models; restart policy $(podman inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$name")"
  "${cmd[@]}" down -t 35
  log "compose: down"
}

case ${1:-} in
  validate | image | compose) "$1" ;;
  *) die "usage: $0 validate|image|compose" ;;
esac
