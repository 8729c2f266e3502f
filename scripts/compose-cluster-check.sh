#!/usr/bin/env bash
# The cluster deployment check: runs docker/compose.yml's `cluster` profile (three RabbitMQ nodes, a
# pg_auto_failover monitor, primary and standby) with the scheduler and three CPU workers, submits generated
# speech through it, kills the first broker node and then the PostgreSQL primary (SIGKILL of their containers)
# while the batch runs, and checks that every scene succeeded exactly once with its file; then tears everything
# down. Builds its images the way scripts/compose-check.sh does where no registry is reachable (Debian's
# packages on a debootstrap base, scenequeue from the binary built here). Slow (minutes): not part of
# scripts/test.sh. KEEP=1 leaves the stack up.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PROJECT=sqcluster
BASE=scenequeue-check/debian:bookworm
started=$(date +%s)
step() { say "[$(( $(date +%s) - started )) s] $*"; }
ok() { echo "  ok: $*" >&2; }

apt_install docker.io debootstrap sox
if ! docker info >/dev/null 2>&1; then
  as_root sh -c 'nohup dockerd > /var/log/scenequeue-dockerd.log 2>&1 &'
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd did not start: see /var/log/scenequeue-dockerd.log"
fi
if docker compose version >/dev/null 2>&1; then compose_bin=(docker compose); else apt_install docker-compose; compose_bin=(docker-compose); fi
# BuildKit: buildx where installed, else the docker.io client's own.
build() {
  if docker buildx version >/dev/null 2>&1; then docker buildx build --load "$@"; else DOCKER_BUILDKIT=1 /usr/bin/docker build "$@"; fi
}

work=$(mktemp -d /var/tmp/scenequeue-cluster-check.XXXXXX)
export SCENEQUEUE_SECRETS=$work/secrets SCENEQUEUE_RECORDINGS=$work/data/in SCENEQUEUE_OUTPUT=$work/data/out
export SCENEQUEUE_UID=1000 SCENEQUEUE_GID=1000 SCENEQUEUE_HTTP_PUBLISH=127.0.0.1:18081
export SCENEQUEUE_IMAGE=scenequeue-check/scenequeue:latest POSTGRES_IMAGE=scenequeue-check/postgres:15
export RABBITMQ_IMAGE=scenequeue-check/rabbitmq:3.10 PG_AUTO_FAILOVER_IMAGE=scenequeue-check/pg-auto-failover:15
export SCENEQUEUE_APP_TOML=scenequeue-app-cluster.toml SCENEQUEUE_OWNER_TOML=scenequeue-owner-cluster.toml
compose() { "${compose_bin[@]}" -p "$PROJECT" -f docker/compose.yml --profile cluster "$@"; }
cleanup() {
  local rc=$?
  if [ "${KEEP:-}" = 1 ]; then say "KEEP=1: the stack stays up (project $PROJECT, files in $work)"; return; fi
  [ $rc -ne 0 ] && { compose logs --no-color --tail 30 >&2 2>/dev/null || true; }
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# --- images ------------------------------------------------------------------------------------------------
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  step "building the base image $BASE with debootstrap"
  root=$work/rootfs
  as_root debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null \
    || die "debootstrap failed (is Debian's mirror reachable?)"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$BASE" >/dev/null
  rm -rf "$root"
fi
step "building PostgreSQL, pg_auto_failover and RabbitMQ images from Debian's packages"
build -q -f docker/check/postgres.Dockerfile --build-arg BASE_IMAGE="$BASE" -t "$POSTGRES_IMAGE" . >/dev/null
build -q -f docker/check/rabbitmq.Dockerfile --build-arg BASE_IMAGE="$BASE" -t "$RABBITMQ_IMAGE" . >/dev/null
build -q -f docker/pg-auto-failover.Dockerfile --build-arg BASE_IMAGE="$BASE" -t "$PG_AUTO_FAILOVER_IMAGE" . >/dev/null
step "building scenequeue (release) and its image from the prebuilt files"
need_cargo
apt_install libopus-dev pkg-config
cargo build --release --locked --bin scenequeue
scripts/fetch-models.sh
scripts/docker-bundle.sh docker/bundle-cpu cpu
build -q -f docker/Dockerfile --build-arg BIN_STAGE=prebuilt --build-arg RUNTIME_IMAGE="$BASE" \
  --build-arg UID=1000 --build-arg GID=1000 -t "$SCENEQUEUE_IMAGE" . >/dev/null
ok "images built"

# --- the stack ---------------------------------------------------------------------------------------------
docker/make-secrets.sh "$SCENEQUEUE_SECRETS" >/dev/null
mkdir -p "$SCENEQUEUE_RECORDINGS" "$SCENEQUEUE_OUTPUT"
chmod 755 "$work" "$work/data"
chown 1000:1000 "$SCENEQUEUE_OUTPUT"
for n in $(seq 96); do
  sox -R -n -r 48000 -c 1 "$SCENEQUEUE_RECORDINGS/talk-$n.wav" synth 20 sine $((200 + n * 10)) vol 0.3
done
chmod -R a+rX "$SCENEQUEUE_RECORDINGS"
ok "96 recordings of 20 s under $SCENEQUEUE_RECORDINGS"

step "bringing up the cluster, the migration, the scheduler and three workers"
compose up -d --no-build --scale worker=3 >/dev/null 2>&1 || { compose up -d --no-build --scale worker=3; die "compose up failed"; }
state() { compose exec -T pg-monitor pg_autoctl show state --pgdata /var/lib/postgresql/data 2>/dev/null; }
# Reported and assigned: a dead primary keeps reporting `primary` while the monitor assigns it `demoted`.
primary() { state | awk -F'|' '$6 ~ /^ *(wait_)?primary *$/ && $7 ~ /^ *(wait_)?primary *$/ {gsub(/ /, "", $1); print $1; exit}'; }
for _ in $(seq 180); do state | grep -q "| *secondary *| *secondary" && break; sleep 2; done
state | grep -q "| *secondary *| *secondary" || die "no standby after 6 minutes: $(state)"
ok "pg_auto_failover: $(primary) primary with a synchronous standby"
running() {
  compose exec -T rabbitmq-1 rabbitmqctl -q cluster_status --formatter json 2>/dev/null \
    | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["running_nodes"]))' 2>/dev/null || echo 0
}
for _ in $(seq 90); do [ "$(running)" = 3 ] && break; sleep 2; done
[ "$(running)" = 3 ] || die "the broker cluster runs $(running) nodes after 3 minutes"
ok "RabbitMQ: 3 nodes in one cluster"
psql_() { compose exec -T "$(primary)" psql -X -A -t -q -h /var/run/postgresql -d scenequeue -c "$1"; }
for _ in $(seq 120); do [ "$(docker inspect -f '{{.State.Status}}' "$(compose ps -q migrate)")" = exited ] && break; sleep 2; done
[ "$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q migrate)")" = 0 ] || die "the migration failed"
ok "schema migrated through the host list"

step "submitting"
batch=$(compose_submit 10)
scenes=$(psql_ "SELECT count(*) FROM scenes WHERE batch_id = '$batch'")
ok "batch $batch: $scenes scenes"

done_jobs() { psql_ "SELECT count(*) FROM jobs WHERE batch_id = '$batch' AND state = 'succeeded'" 2>/dev/null || echo -1; }
until_more() {
  local before=$1 t0=$2 n
  for _ in $(seq 1200); do
    n=$(done_jobs)
    [ "$n" -gt "$before" ] && { echo $(( $(date +%s) - t0 )); return 0; }
    [ "$(psql_ "SELECT state FROM batches WHERE id = '$batch'" 2>/dev/null)" = finished ] \
      && die "the batch finished before the fault was over: give it more recordings"
    sleep 0.5
  done
  die "no job completed within 10 minutes of the fault"
}
for _ in $(seq 600); do [ "$(done_jobs)" -ge 1 ] && break; sleep 0.5; done
before=$(done_jobs); t0=$(date +%s)
docker kill "$(compose ps -q rabbitmq-1)" >/dev/null
took=$(until_more "$before" "$t0") || exit 1
ok "broker node rabbitmq-1 killed: the next job completed $took s later"
compose start rabbitmq-1 >/dev/null 2>&1
was=$(primary); before=$(done_jobs); t0=$(date +%s)
docker kill "$(compose ps -q "$was")" >/dev/null
took=$(until_more "$before" "$t0") || exit 1
ok "PostgreSQL primary $was killed: the next job completed $took s later, on $(primary)"
compose start "$was" >/dev/null 2>&1

step "waiting for the batch"
for _ in $(seq 900); do [ "$(psql_ "SELECT state FROM batches WHERE id = '$batch'" 2>/dev/null)" = finished ] && break; sleep 1; done
read -r n_scenes n_ok n_results < <(psql_ "SELECT count(*), count(*) FILTER (WHERE s.state = 'succeeded'),
    (SELECT count(*) FROM results r JOIN scenes t ON t.id = r.scene_id WHERE t.batch_id = '$batch')
    FROM scenes s WHERE s.batch_id = '$batch'" | tr '|' ' ')
[ "$n_ok" = "$scenes" ] && [ "$n_results" = "$scenes" ] || die "scenes $n_scenes, succeeded $n_ok, results $n_results"
files=$(find "$SCENEQUEUE_OUTPUT" -type f -name 'scene-*.wav' | wc -l)
[ "$files" = "$scenes" ] || die "$files output files for $scenes scenes"
ok "all $scenes scenes succeeded, each with one result and one file, $(( $(date +%s) - started )) s into the check"
for _ in $(seq 60); do state | grep -q "| *secondary *| *secondary" && break; sleep 2; done
state | grep -q "| *secondary *| *secondary" || die "the old primary $was has not rejoined as the standby: $(state)"
ok "the old primary $was is back as the standby"
