#!/usr/bin/env bash
# Lays out what an image holds, from a built and fetched checkout, in DEST:
#   DEST/bin/scenequeue      the release binary (cargo build --release --locked --bin scenequeue)
#   DEST/ort/                ONNX Runtime: the CPU build (cpu), or the CUDA build with its providers (gpu)
#   DEST/models/<name>/      every model's files, manifest.toml included (not the tests' reference archive), and
#   DEST/models/asr/<name>/  each recognition model fetched
# Usage: scripts/docker-bundle.sh DEST cpu|gpu
# The images' build stage runs it; scripts/compose-check.sh runs it on the host to build images from prebuilt
# files (docker/bundle-cpu). The image checks every file against scripts/pins.sha256 (docker/check-bundle.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

dest=${1:?usage: scripts/docker-bundle.sh DEST cpu|gpu}
flavor=${2:?usage: scripts/docker-bundle.sh DEST cpu|gpu}
case "$flavor" in
  cpu) ort=.scenequeue/ort ;;
  gpu) ort=.scenequeue/ort-gpu ;;
  *) die "flavor must be cpu or gpu, not $flavor" ;;
esac
bin=${CARGO_TARGET_DIR:-target}/release/scenequeue
[ -x "$bin" ] || die "$bin missing: cargo build --release --locked --bin scenequeue"
[ -d "$ort" ] || die "$ort missing: scripts/fetch-models.sh$([ "$flavor" = gpu ] && echo " --gpu")"

rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/ort" "$dest/models"
cp "$bin" "$dest/bin/scenequeue"
strip --strip-debug "$dest/bin/scenequeue" 2>/dev/null || true
# The library files and their links (libonnxruntime.so -> libonnxruntime.so.X.Y.Z), without the TensorRT provider.
for f in "$ort"/libonnxruntime*; do
  case "$f" in *tensorrt*) continue ;; esac
  cp -P "$f" "$dest/ort/"
done
# Enhancement models (models/NAME/) and the recognition models fetched (models/asr/NAME/, with their graphs).
for dir in models/*/ models/asr/*/; do
  case "$dir" in
    models/asr/) continue ;;
    models/asr/*) [ -f "$dir/encoder.onnx" ] || continue ;;
  esac
  name=${dir#models/}
  mkdir -p "$dest/models/$name"
  for f in "$dir"*; do
    [ -f "$f" ] || continue
    case "$f" in *.tar.gz) continue ;; esac
    cp "$f" "$dest/models/$name"
  done
done
chmod -R a+rX "$dest"
say "bundle ($flavor) in $dest: $(du -sh "$dest" | cut -f1)"
