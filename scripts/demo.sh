#!/usr/bin/env bash
# Sets up everything and runs the demo: noisy sample speech in, enhanced scenes out, through RabbitMQ workers
# with state in Postgres. Usage: scripts/demo.sh [extra `scenequeue demo` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install espeak-ng sox ca-certificates gcc libc6-dev pkg-config libopus-dev
need_cargo
scripts/services.sh
scripts/fetch-models.sh
say "building scenequeue (release)"
cargo build --release --locked -q || die "cargo build failed"
exec "${CARGO_TARGET_DIR:-target}/release/scenequeue" demo "$@"
