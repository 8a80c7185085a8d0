#!/usr/bin/env bash
# CI stage: the README's `docker compose up -d --build` on a real Docker engine, then the checks a user's own
# Docker host would show, on the running stack:
#   Docker's healthcheck reaches healthy; the api runs as a non-root user on a read-only root filesystem with
#   ./models mounted read-only; the README's curl examples and real MNIST uploads answer as documented; the image
#   is within its size budget; a killed server process is brought back by `restart: unless-stopped`;
#   `docker compose --profile train run --rm train` writes the next version into ./models, owned by the user who
#   ran it, and the running api serves it without a restart; `docker compose down` stops the api through its drain
#   within stop_grace_period.
# ../shared/container/docker.sh starts the engine (Debian's docker.io); .ci/docker-compose.host.yml is the one
# override, host networking, because that engine has no bridge network.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(../shared/container/docker.sh)"

export MNIST_DATA_DIR="${MNIST_DATA_DIR:-$(cd ../shared/data/mnist && pwd)}"  # the train service reads it
PY=.venv/bin/python
URL=http://127.0.0.1:8000
COMPOSE=(docker compose -f docker-compose.yml -f .ci/docker-compose.host.yml)
MAX_IMAGE_BYTES=1200000000  # the serving image's size budget (docs/deployment.md)
HEALTHY_TIMEOUT=240  # seconds: the first healthcheck runs 30 s after start (interval), then every 30 s
TRAIN_ARGS=(--epochs 1 --train-limit 3000 --validation-size 500 --scene-digits 40 --non-digits 40)  # the loop, not the accuracy

log() { echo "compose: $*"; }
die() {
  echo "compose: FAIL: $*" >&2
  "${COMPOSE[@]}" logs --no-color --tail 40 api >&2 || true
  exit 1
}
seconds_since() { echo "$(date +%s.%N) - $1" | bc | xargs printf '%.1f'; }
api_container() { "${COMPOSE[@]}" ps -q api; }
health_of() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1"; }

# wait_until SECONDS DESCRIPTION COMMAND...: run COMMAND until it succeeds, at most SECONDS.
wait_until() {
  local limit=$1 what=$2 start
  shift 2
  start=$(date +%s.%N)
  until "$@"; do
    (($(echo "$(date +%s.%N) - $start > $limit" | bc))) && die "$what: not after ${limit}s"
    sleep 1
  done
  log "$what after $(seconds_since "$start") s"
}
is_healthy() { [ "$(health_of "$(api_container)")" = healthy ]; }
served_version() { curl -fsS "$URL/readyz" 2>/dev/null | "$PY" -c 'import json, sys; print(json.load(sys.stdin).get("model_version"))'; }
serves() { [ "$(served_version)" = "$1" ]; }
newest_version() { ls models/mnist | grep -E '^[0-9]+$' | sort -n | tail -1; }

"$PY" -c 'import socket; socket.create_server(("127.0.0.1", 8000)).close()' 2>/dev/null \
  || die "port 8000 is taken on this machine; the README's stack listens there"
trap '"${COMPOSE[@]}" down -t 5 >/dev/null 2>&1 || true; docker container prune -f >/dev/null 2>&1 || true' EXIT
committed_version=$(newest_version)

started=$(date +%s.%N)
"${COMPOSE[@]}" up -d --build
log "built and started in $(seconds_since "$started") s"
container=$(api_container)
[ -n "$container" ] || die "docker compose started no api container"
image_bytes=$(docker image inspect -f '{{.Size}}' mnist-service:latest)
log "image mnist-service:latest: $(numfmt --to=si "$image_bytes") ($image_bytes bytes)"
((image_bytes <= MAX_IMAGE_BYTES)) || die "the image is over its budget of $(numfmt --to=si $MAX_IMAGE_BYTES)"

wait_until "$HEALTHY_TIMEOUT" "Docker's healthcheck: healthy" is_healthy
uid=$(docker exec "$container" id -u)
[ "$uid" != 0 ] || die "the api runs as root"
[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$container")" = true ] || die "the root filesystem is writable"
if docker exec "$container" touch /app/write-test 2>/dev/null; then die "a file could be written under /app"; fi
docker inspect -f '{{range .Mounts}}{{.Destination}} rw={{.RW}} {{end}}' "$container" | grep -q '/app/models rw=false' \
  || die "./models is not mounted read-only at /app/models"
log "runs as uid $uid, read-only root filesystem, ./models mounted read-only; restart policy $(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$container")"

"$PY" .ci/readme_curl.py --url "$URL"
"$PY" .ci/probe.py "$URL"

# A crash, as the engine sees one: the server process (the container's PID 1) killed from outside.
restarts=$(docker inspect -f '{{.RestartCount}}' "$container")
kill -KILL "$(docker inspect -f '{{.State.Pid}}' "$container")"
restarted() { (($(docker inspect -f '{{.RestartCount}}' "$container") > restarts)); }
wait_until 60 "restarted by 'restart: unless-stopped' after SIGKILL" restarted
wait_until "$HEALTHY_TIMEOUT" "healthy again after the restart" is_healthy

# The train -> serve loop: the next version goes live in the running api, no restart.
restarts=$(docker inspect -f '{{.RestartCount}}' "$container")
started=$(date +%s.%N)
HOST_UID=$(id -u) HOST_GID=$(id -g) "${COMPOSE[@]}" --profile train run --rm --build train "${TRAIN_ARGS[@]}"
trained=$(newest_version)
[ "$trained" -gt "$committed_version" ] || die "the train service wrote no new version into ./models"
trap 'rm -rf "models/mnist/$trained"; "${COMPOSE[@]}" down -t 5 >/dev/null 2>&1 || true' EXIT
log "trained models/mnist/$trained in $(seconds_since "$started") s"
owner=$(stat -c '%u:%g' "models/mnist/$trained")
[ "$owner" = "$(id -u):$(id -g)" ] || die "models/mnist/$trained belongs to $owner, not to the user who ran it ($(id -u):$(id -g))"
log "models/mnist/$trained belongs to $owner, the user who ran the train service"
wait_until 120 "the running api serves version $trained" serves "$trained"
[ "$(docker inspect -f '{{.RestartCount}}' "$container")" = "$restarts" ] || die "the api restarted to serve it"
"$PY" .ci/probe.py "$URL" --count 20 --min-accuracy 0  # a short run: answers, not accuracy

# Stop through the drain: within stop_grace_period, exit code 0, and the drain in the logs.
grace=$("${COMPOSE[@]}" config --format json | "$PY" -c 'import json, re, sys
period = json.load(sys.stdin)["services"]["api"]["stop_grace_period"]
print(sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", period)))')
exit_file=$(mktemp) log_file=$(mktemp)
docker wait "$container" >"$exit_file" &
waiter=$!
docker logs -f "$container" >"$log_file" 2>&1 &  # follows until the container is gone
started=$(date +%s.%N)
"${COMPOSE[@]}" down
took=$(seconds_since "$started")
wait "$waiter"
logs=$(cat "$log_file")
log "docker compose down took $took s (stop_grace_period ${grace}s); the api exited with $(cat "$exit_file")"
(($(echo "$took < $grace" | bc))) || die "docker compose down took longer than stop_grace_period"
[ "$(cat "$exit_file")" = 0 ] || die "the api exited with $(cat "$exit_file")"
for line in "SIGTERM: draining" "drain window over"; do  # app/drain.py's two lines, as the JSON log has them
  echo "$logs" | grep -F "$line" || die "the api's logs do not show the drain ('$line')"
done
log "all checks passed"
