#!/bin/sh
# Checks an image's ONNX Runtime and model files against scripts/pins.sha256 (the sums scripts/fetch-models.sh
# pins), mapped to the image's layout: .scenequeue/ort/ (cpu) or .scenequeue/ort-gpu/ (gpu) -> ort/, models/ ->
# models/. Every pinned file of the flavor must be present and match; the tests' reference files are not shipped.
# Usage (inside the image build): check-bundle.sh cpu|gpu DIR PINS
set -eu
flavor=$1 dir=$2 pins=$3
case "$flavor" in
  cpu) ort='\.scenequeue/ort/' ;;
  gpu) ort='\.scenequeue/ort-gpu/' ;;
  *) echo "flavor must be cpu or gpu" >&2; exit 1 ;;
esac
sums=$(sed -n -e "s#  ${ort}#  ort/#p" -e '/  models\/.*\.tar\.gz$/d' -e '/  models\//p' "$pins")
[ -n "$sums" ] || { echo "no pinned sums for $flavor in $pins" >&2; exit 1; }
cd "$dir"
# Recognition models are checked where the bundle holds them (tiny.en always; others as fetched).
sums=$(echo "$sums" | while read -r sum path; do
  case "$path" in
    models/asr/*) name=${path#models/asr/}; [ -d "models/asr/${name%%/*}" ] || continue ;;
  esac
  echo "$sum  $path"
done)
echo "$sums" | sha256sum --strict -c -
test -x bin/scenequeue
test -e ort/libonnxruntime.so
