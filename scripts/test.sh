#!/usr/bin/env bash
# Sets up everything the tests need (services, ONNX Runtime, models, tools) and runs the whole test suite
# against the real PostgreSQL and RabbitMQ on localhost and the real models.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

# ffmpeg and sox's MP3 support make the format fixtures (AAC, Matroska, WebM/Opus, MP3); chromium runs the
# dashboard test headless; iproute2 and util-linux give the chaos suite its network namespaces and mounts.
apt_install espeak-ng sox libsox-fmt-mp3 ffmpeg ca-certificates gcc libc6-dev pkg-config libopus-dev chromium \
  iproute2 util-linux
# The chaos suite's many-node test runs a RabbitMQ cluster and a pg_auto_failover pair (scripts/cluster.sh).
apt_install rabbitmq-server postgresql-15 postgresql-15-auto-failover pg-auto-failover-cli python3
need_cargo
scripts/services.sh
scripts/fetch-models.sh
# The Whisper stage is checked against faster-whisper on the same samples and weights (tests/support).
scripts/fetch-asr-reference.sh
export SCENEQUEUE_ORT_LIBRARY="$PWD/.scenequeue/ort/libonnxruntime.so"
export SCENEQUEUE_MODEL_DIR="$PWD/models"
# The pooler test runs the farm through PgBouncer in transaction mode (1.21 or newer: built here if Debian's is older).
SCENEQUEUE_PGBOUNCER=$(scripts/pgbouncer.sh) || die "no PgBouncer for the pooler test"
export SCENEQUEUE_PGBOUNCER
# The chaos suite (tests/chaos/main.rs) restarts PostgreSQL and RabbitMQ, so it never runs beside other tests: first
# everything else, then the chaos tests alone, one at a time.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast -E 'not binary(chaos)' "$@"
  cargo nextest run --workspace --locked --no-fail-fast -E 'binary(chaos)' --test-threads 1 "$@"
else
  cargo test --workspace --locked --no-fail-fast --lib --bins --benches "$@"
  cargo test --locked --no-fail-fast --test integration "$@"
  cargo test --locked --no-fail-fast --test chaos "$@" -- --test-threads 1
fi
