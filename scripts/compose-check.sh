#!/usr/bin/env bash
# The deployment check: builds the images, runs the whole stack with compose (PostgreSQL, RabbitMQ, the
# migration, the scheduler, CPU workers), submits generated noisy speech through it, scales the workers to 3,
# kills one in the middle of a job, and checks that every scene succeeded exactly once, with its file on the
# host owned by the chosen host user; then tears everything down. Prints what it checked. Slow (minutes), so it
# is not part of scripts/test.sh.
#
# Where no image registry is reachable (as on the development machine) it builds its own images:
#   - a Debian bookworm base with debootstrap (Debian's mirror), imported as scenequeue-check/debian:bookworm;
#   - PostgreSQL 15 and RabbitMQ from Debian's packages on that base (docker/check/);
#   - scenequeue's image from docker/Dockerfile with BIN_STAGE=prebuilt: the binary is built on this host
#     (cargo build --release), ONNX Runtime and the models fetched here (scripts/fetch-models.sh) and laid out
#     by scripts/docker-bundle.sh, since containers reach no crate or PyPI registry; the image still checks
#     every file against scripts/pins.sha256.
# With registries reachable, CHECK_OFFICIAL=1 uses the Dockerfile's own build stage and the official images.
#
# Environment: CHECK_UID / CHECK_GID (1000:1000, or the invoking user's when not root): the host user that must
# own the outputs; KEEP=1 leaves the stack up for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

CHECK_UID=${CHECK_UID:-$([ "$(id -u)" -eq 0 ] && echo 1000 || id -u)}
CHECK_GID=${CHECK_GID:-$([ "$(id -u)" -eq 0 ] && echo 1000 || id -g)}
PROJECT=sqcheck
BASE=scenequeue-check/debian:bookworm
started=$(date +%s)
step() { say "[$(( $(date +%s) - started )) s] $*"; }
checked=()
ok() { checked+=("$*"); echo "  ok: $*" >&2; }

# --- tools -------------------------------------------------------------------------------------------------
apt_install docker.io debootstrap espeak-ng sox curl
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/scenequeue-dockerd.log)"
  as_root sh -c 'nohup dockerd > /var/log/scenequeue-dockerd.log 2>&1 &'
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd did not start: see /var/log/scenequeue-dockerd.log"
fi
# Compose: the v2 plugin where installed, else Debian's docker-compose (1.29, bookworm has no v2 package).
if docker compose version >/dev/null 2>&1; then
  compose_bin=(docker compose)
else
  apt_install docker-compose
  compose_bin=(docker-compose)
fi
# Image builds need BuildKit (BIN_STAGE skips the unused build stage): buildx where installed, else the
# docker.io client's own BuildKit support.
build() {
  if docker buildx version >/dev/null 2>&1; then
    docker buildx build --load "$@"
  else
    DOCKER_BUILDKIT=1 /usr/bin/docker build "$@"
  fi
}

work=$(mktemp -d /var/tmp/scenequeue-compose-check.XXXXXX)
export SCENEQUEUE_SECRETS=$work/secrets SCENEQUEUE_RECORDINGS=$work/data/in SCENEQUEUE_OUTPUT=$work/data/out
export SCENEQUEUE_UID=$CHECK_UID SCENEQUEUE_GID=$CHECK_GID SCENEQUEUE_HTTP_PUBLISH=127.0.0.1:18080
export SCENEQUEUE_IMAGE=scenequeue-check/scenequeue:latest
compose() { "${compose_bin[@]}" -p "$PROJECT" -f docker/compose.yml "$@"; }
cleanup() {
  local rc=$?
  if [ "${KEEP:-}" = 1 ]; then
    say "KEEP=1: the stack stays up (project $PROJECT, files in $work)"
    return
  fi
  [ $rc -ne 0 ] && { compose logs --no-color --tail 40 >&2 2>/dev/null || true; }
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

# --- images ------------------------------------------------------------------------------------------------
if [ "${CHECK_OFFICIAL:-}" = 1 ]; then
  step "building scenequeue's image in its build stage (official base images)"
  build -f docker/Dockerfile --build-arg UID="$CHECK_UID" --build-arg GID="$CHECK_GID" -t "$SCENEQUEUE_IMAGE" .
else
  if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    step "building the base image $BASE with debootstrap"
    root=$work/rootfs
    as_root debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null \
      || die "debootstrap failed (is Debian's mirror reachable?)"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/{doc,man,info,locale}/*
    tar -C "$root" -c . | docker import - "$BASE" >/dev/null
    rm -rf "$root"
  fi
  export POSTGRES_IMAGE=scenequeue-check/postgres:15 RABBITMQ_IMAGE=scenequeue-check/rabbitmq:3.10
  step "building PostgreSQL and RabbitMQ images from Debian's packages"
  build -q -f docker/check/postgres.Dockerfile --build-arg BASE_IMAGE="$BASE" -t "$POSTGRES_IMAGE" . >/dev/null
  build -q -f docker/check/rabbitmq.Dockerfile --build-arg BASE_IMAGE="$BASE" -t "$RABBITMQ_IMAGE" . >/dev/null
  step "building scenequeue (release), fetching ONNX Runtime and the models, laying out docker/bundle-cpu"
  need_cargo
  apt_install libopus-dev pkg-config
  cargo build --release --locked --bin scenequeue
  scripts/fetch-models.sh
  scripts/docker-bundle.sh docker/bundle-cpu cpu
  step "building $SCENEQUEUE_IMAGE from the prebuilt files (BIN_STAGE=prebuilt)"
  build -q -f docker/Dockerfile --build-arg BIN_STAGE=prebuilt --build-arg RUNTIME_IMAGE="$BASE" \
    --build-arg UID="$CHECK_UID" --build-arg GID="$CHECK_GID" -t "$SCENEQUEUE_IMAGE" . >/dev/null
fi
size=$(docker image inspect -f '{{.Size}}' "$SCENEQUEUE_IMAGE")
ok "image $SCENEQUEUE_IMAGE built: $(( size / 1000000 )) MB; ONNX Runtime and models match scripts/pins.sha256"
user=$(docker image inspect -f '{{.Config.User}}' "$SCENEQUEUE_IMAGE")
[ "$user" = "$CHECK_UID:$CHECK_GID" ] || die "the image runs as '$user', not $CHECK_UID:$CHECK_GID"
name=$(docker run --rm --entrypoint id "$SCENEQUEUE_IMAGE" -un)
[ "$(docker run --rm --entrypoint id "$SCENEQUEUE_IMAGE" -u)" != 0 ] || die "the image's user is root"
ok "the image runs as the non-root user $name ($user), with a HEALTHCHECK: $(docker image inspect -f '{{json .Config.Healthcheck.Test}}' "$SCENEQUEUE_IMAGE")"

# --- secrets and data --------------------------------------------------------------------------------------
docker/make-secrets.sh "$SCENEQUEUE_SECRETS" >/dev/null
mkdir -p "$SCENEQUEUE_RECORDINGS" "$SCENEQUEUE_OUTPUT"
chmod 755 "$work" "$work/data"   # the host user reaches its outputs (the secrets directory stays 0700)
chown "$CHECK_UID:$CHECK_GID" "$SCENEQUEUE_OUTPUT"
step "generating noisy speech (espeak-ng + sox, pink noise at 5 dB SNR)"
sentences=(
  "Thank you for joining us today to talk about the archive project."
  "We started digitising the tapes three years ago, one shelf at a time."
  "Most of the recordings were made in small rooms with a lot of background noise."
  "The goal is to make every interview searchable by its words."
  "Recording number twelve, near the river crossing, early in the morning."
  "The wind is strong today, so the levels may vary from one take to the next."
)
for n in 1 2 3 4 5 6; do
  parts=()
  for round in 1 2 3; do
    for i in "${!sentences[@]}"; do
      f=$work/s-$n-$round-$i.wav
      espeak-ng -v en-us -s $((135 + n * 5)) -w "$f.raw.wav" "${sentences[$i]}"
      sox -R "$f.raw.wav" -r 48000 -c 1 "$f" pad 0 1.2
      parts+=("$f")
    done
  done
  sox -R "${parts[@]}" "$work/speech-$n.wav"
  len=$(soxi -D "$work/speech-$n.wav")
  sox -R -n -r 48000 -c 1 "$work/noise-$n.wav" synth "$len" pinknoise vol 0.05
  sox -R -m "$work/speech-$n.wav" "$work/noise-$n.wav" "$SCENEQUEUE_RECORDINGS/recording-$n.wav"
  rm -f "$work"/s-"$n"-* "$work/speech-$n.wav" "$work/noise-$n.wav"
done
chmod -R a+rX "$SCENEQUEUE_RECORDINGS"
audio_s=$(for f in "$SCENEQUEUE_RECORDINGS"/*.wav; do soxi -D "$f"; done | awk '{s += $1} END {printf "%.0f", s}')
ok "6 recordings, ${audio_s} s of noisy speech, under $SCENEQUEUE_RECORDINGS (mounted read-only)"

# --- the stack ---------------------------------------------------------------------------------------------
psql_() { compose exec -T postgres psql -X -A -t -q -U postgres -d scenequeue -c "$1"; }
step "bringing up postgres, rabbitmq, migrate, scheduler and one worker"
compose up -d --no-build postgres rabbitmq migrate scheduler worker >/dev/null 2>&1 \
  || { compose up -d --no-build postgres rabbitmq migrate scheduler worker; die "compose up failed"; }
migrate_id=$(compose ps -q migrate)
[ "$(docker inspect -f '{{.State.ExitCode}}' "$migrate_id")" = 0 ] || die "the migration failed"
ok "schema migrated by scenequeue_owner (exit 0); scheduler and workers connect as scenequeue_app"
owner=$(psql_ "SELECT tableowner FROM pg_tables WHERE tablename = 'jobs'")
[ "$owner" = scenequeue_owner ] || die "jobs is owned by '$owner'"
denied=$(compose exec -T postgres sh -c 'PGPASSWORD=$(cat /run/secrets/db_app_password) psql -X -h 127.0.0.1 -U scenequeue_app -d scenequeue -c "CREATE TABLE intruder (x int)" 2>&1' || true)
case "$denied" in *"permission denied"*) ;; *) die "scenequeue_app could create a table: $denied" ;; esac
ok "tables owned by scenequeue_owner; scenequeue_app may not create one (${denied%%$'\n'*})"

wait_healthy() {
  local id=$1 name=$2 state=
  for _ in $(seq 90); do
    state=$(docker inspect -f '{{.State.Health.Status}}' "$id")
    [ "$state" = healthy ] && return 0
    sleep 2
  done
  die "$name is $state after 3 minutes"
}
wait_healthy "$(compose ps -q scheduler)" scheduler
wait_healthy "$(compose ps -q worker)" worker
ok "scheduler healthy (scenequeue probe: HTTP), worker healthy (scenequeue probe: alive file)"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$SCENEQUEUE_HTTP_PUBLISH/api/v1/overview")
[ "$code" = 200 ] || die "the dashboard's API answered $code"
ok "the scheduler's dashboard API answers on http://$SCENEQUEUE_HTTP_PUBLISH (200)"

if compose run --rm --no-deps --entrypoint sh worker -c 'touch /data/in/x' >/dev/null 2>&1; then
  die "the recordings are writable from a container"
fi
ok "recordings are read-only inside the containers"

step "submitting through the stack"
batch=$(compose_submit 12)
scenes=$(psql_ "SELECT count(*) FROM scenes WHERE batch_id = '$batch'")
jobs=$(psql_ "SELECT count(*) FROM jobs WHERE batch_id = '$batch'")
ok "batch $batch submitted: $scenes scenes in $jobs jobs"

step "scaling to 3 workers and killing one in the middle of a job"
compose up -d --no-build --no-deps --no-recreate --scale worker=3 worker >/dev/null 2>&1
victim=
for _ in $(seq 600); do
  victim=$(psql_ "SELECT w.hostname FROM workers w JOIN jobs j ON j.lease_owner = w.id
                  WHERE j.batch_id = '$batch' AND j.state = 'running' AND w.state = 'busy' LIMIT 1" 2>/dev/null || true)
  done_jobs=$(psql_ "SELECT count(*) FROM jobs WHERE batch_id = '$batch' AND state = 'succeeded'")
  [ -n "$victim" ] && [ "$done_jobs" -ge 1 ] && break
  victim=
  sleep 0.2
done
[ -n "$victim" ] || die "no worker was seen running a job of the batch"
victim_job=$(psql_ "SELECT j.id FROM jobs j JOIN workers w ON j.lease_owner = w.id WHERE w.hostname = '$victim' AND j.state = 'running' LIMIT 1")
docker kill "$victim" >/dev/null
running=$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter label=com.docker.compose.service=worker | wc -l)
ok "killed worker container $victim (SIGKILL) while it ran job $victim_job; $done_jobs jobs had succeeded; $running workers left running"

step "waiting for the batch"
state=
for _ in $(seq 900); do
  state=$(psql_ "SELECT state FROM batches WHERE id = '$batch'")
  [ "$state" = finished ] && break
  sleep 1
done
[ "$state" = finished ] || die "the batch is $state after 15 minutes"
ok "batch finished $(( $(date +%s) - started )) s into the check"

# --- nothing lost, nothing twice ---------------------------------------------------------------------------
read -r n_scenes n_ok n_results n_distinct < <(psql_ "SELECT count(*), count(*) FILTER (WHERE s.state = 'succeeded'),
    (SELECT count(*) FROM results r JOIN scenes t ON t.id = r.scene_id WHERE t.batch_id = '$batch'),
    (SELECT count(DISTINCT r.output_path) FROM results r JOIN scenes t ON t.id = r.scene_id WHERE t.batch_id = '$batch')
    FROM scenes s WHERE s.batch_id = '$batch'" | tr '|' ' ')
[ "$n_scenes" = "$scenes" ] && [ "$n_ok" = "$scenes" ] && [ "$n_results" = "$scenes" ] && [ "$n_distinct" = "$scenes" ] \
  || die "scenes $n_scenes, succeeded $n_ok, results $n_results, distinct outputs $n_distinct (expected $scenes each)"
ok "all $scenes scenes succeeded, each with exactly one result row and its own output file"
read -r j_ok j_retried < <(psql_ "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE attempts > 1)
    FROM jobs WHERE batch_id = '$batch'" | tr '|' ' ')
[ "$j_ok" = "$jobs" ] || die "$j_ok of $jobs jobs succeeded"
victim_attempts=$(psql_ "SELECT attempts FROM jobs WHERE id = '$victim_job'")
ok "all $jobs jobs succeeded; the killed worker's job ran again (attempts $victim_attempts), $j_retried job(s) took more than one attempt"
files=$(find "$SCENEQUEUE_OUTPUT" -type f | wc -l)
wavs=$(find "$SCENEQUEUE_OUTPUT" -type f -name 'scene-*.wav' | wc -l)
[ "$files" = "$scenes" ] && [ "$wavs" = "$scenes" ] || die "$files files ($wavs scenes) under the output, expected $scenes"
ok "the output holds exactly $scenes files, no attempt file left behind"
while IFS='|' read -r path; do
  host=$SCENEQUEUE_OUTPUT/${path#/data/out/}
  [ -f "$host" ] || die "missing output $host"
done < <(psql_ "SELECT r.output_path FROM results r JOIN scenes s ON s.id = r.scene_id WHERE s.batch_id = '$batch'")
owners=$(find "$SCENEQUEUE_OUTPUT" -type f -printf '%U:%G\n' | sort -u | tr '\n' ' ')
[ "$owners" = "$CHECK_UID:$CHECK_GID " ] || die "outputs owned by $owners, expected $CHECK_UID:$CHECK_GID"
first=$(find "$SCENEQUEUE_OUTPUT" -type f -name 'scene-*.wav' -print -quit)
magic=$(setpriv --reuid "$CHECK_UID" --regid "$CHECK_GID" --clear-groups head -c 4 "$first" || true)
[ "$magic" = RIFF ] || die "the host user $CHECK_UID cannot read $first"
ok "every result's file is on the host, owned by $CHECK_UID:$CHECK_GID and readable by that user"

status_out=$(compose run --rm --no-deps scheduler status "$batch" 2>/dev/null)
sed 's/^/    /' <<<"$status_out" >&2
grep -qE "scenes +$scenes +succeeded $scenes\b" <<<"$status_out" || die "status does not count $scenes succeeded scenes"
ok "scenequeue status $batch counts $scenes scenes succeeded"

# --- secrets stay secret -----------------------------------------------------------------------------------
config_out=$(compose run --rm --no-deps scheduler config 2>/dev/null)
logs=$(compose logs --no-color 2>&1)
for f in db_owner_password db_app_password postgres_password; do
  pw=$(cat "$SCENEQUEUE_SECRETS/$f")
  ! grep -qF "$pw" <<<"$logs$config_out" || die "the $f appears in the logs or in scenequeue config"
done
mq_pw=$(sed -n 's/^RABBITMQ_DEFAULT_PASS=//p' "$SCENEQUEUE_SECRETS/rabbitmq.env")
! grep -qF "$mq_pw" <<<"$logs$config_out" || die "the broker's password appears in the logs or in scenequeue config"
grep -q 'database_url = "postgres://scenequeue_app:\*\*\*@postgres' <<<"$config_out" || die "config did not mask: $config_out"
ok "no password in any container's log or in scenequeue config (it shows postgres://scenequeue_app:***@postgres...)"

step "tearing down"
echo "compose check passed in $(( $(date +%s) - started )) s:" >&2
printf '  - %s\n' "${checked[@]}" >&2
