#!/usr/bin/env bash
# The GPU check: runs the worker's inference path (session policies, CUDA settings, memory telemetry, OOM
# recovery) on a CUDA machine with the real model, prints one table per step and, last, a summary with one line
# per step (ok, skipped or FAILED, and why). Exits non-zero when any step failed.
#
#   ORT_DIR=/path/to/onnxruntime/capi scripts/gpu-check.sh [OUT_DIR]
#
# Needs:
#   - release binaries: BIN_DIR (default target/release) with scenequeue and scenequeue-bench (cargo build --release);
#   - the model files: models/$MODEL (MODEL, default nsnet2-48k; deepfilternet3 works too; scripts/fetch-models.sh);
#   - ORT_DIR (required): the directory of ONNX Runtime's CUDA build, holding libonnxruntime.so.$ORT_GPU_VERSION
#     with libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so beside it. ORT_GPU_VERSION
#     defaults to 1.31.1, the newest CUDA 13 build on PyPI: `pip install onnxruntime-gpu==1.31.1`, then ORT_DIR is
#     the wheel's onnxruntime/capi directory
#     (python3 -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))');
#   - the CUDA 13 and cuDNN 9 libraries. CUDA_LIBS, a colon-separated list of directories, names them; when it is
#     unset they are looked for in $CUDA_HOME/lib64 and $CUDA_HOME/targets/*/lib, in the lib directories of
#     pip's nvidia-*-cu13 packages (nvidia-cuda-runtime-cu13, nvidia-cublas-cu13, nvidia-cudnn-cu13, ...: the
#     directories under `python3 -c 'import nvidia; print(*nvidia.__path__)'`) and in the system library path
#     (ldconfig -p). The check stops before the first step when the CUDA provider library cannot find them all.
# Tunables: SCENES (200), POLICIES, POLICY_TIME_S (per policy: no new job starts after it; the table says how
# many scenes ran), MEM_LIMIT_MB (8192: an 8 GB card), FIXED (step 4, off by default: fixed-shape window settings
# WINDOW_S:OVERLAP_S:BATCH, space-separated, each run with the per-job policy over the same scenes), OOM_CAPS
# (step 2's arena caps, MiB: "96 160"), OOM_CPU_FALLBACK (1; 0 leaves step 2's scenes to the windows alone),
# SKIP_STEP1 (0), ASR_MODEL (step 5's recogniser after the enhancer, whisper-tiny.en; empty skips it; the model is
# fetched by scripts/fetch-models.sh).
# A step fails when its benchmark exits non-zero or times out, or when any scene in it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

OUT=${1:-gpu-check-out}
BIN=${BIN_DIR:-target/release}
ORT_GPU_VERSION=${ORT_GPU_VERSION:-1.31.1}
SCENES=${SCENES:-200}
POLICIES=${POLICIES-per-job process persistent every-4-jobs held-above-1024 shrink-each-run}
POLICY_TIME_S=${POLICY_TIME_S:-60}
MEM_LIMIT_MB=${MEM_LIMIT_MB:-8192}
MODEL=${MODEL:-nsnet2-48k}
FIXED=${FIXED:-}

# --- What the check needs: all of it is checked before the first step runs.
[ -n "${ORT_DIR:-}" ] || die "ORT_DIR is not set: point it at the directory holding libonnxruntime.so.$ORT_GPU_VERSION,
  libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so from PyPI onnxruntime-gpu $ORT_GPU_VERSION
  (pip install onnxruntime-gpu==$ORT_GPU_VERSION; the wheel's onnxruntime/capi directory). See this script's header."
LIB=$ORT_DIR/libonnxruntime.so.$ORT_GPU_VERSION
if [ ! -f "$LIB" ]; then
  others=
  for f in "$ORT_DIR"/libonnxruntime.so.*; do [ ! -f "$f" ] || others+="${f##*/} "; done
  die "$LIB missing (ONNX Runtime's CUDA build, onnxruntime-gpu $ORT_GPU_VERSION)${others:+; $ORT_DIR has $others(set ORT_GPU_VERSION to use another version)}"
fi
for f in libonnxruntime_providers_cuda.so libonnxruntime_providers_shared.so; do
  [ -f "$ORT_DIR/$f" ] || die "$ORT_DIR/$f missing: ORT_DIR must be a CUDA build of ONNX Runtime (onnxruntime-gpu)"
done
[ -x "$BIN/scenequeue-bench" ] || die "$BIN/scenequeue-bench missing (cargo build --release, or set BIN_DIR)"
[ -x "$BIN/scenequeue" ] || die "$BIN/scenequeue missing (cargo build --release, or set BIN_DIR)"
[ -f "models/$MODEL/manifest.toml" ] || die "models/$MODEL/manifest.toml missing (scripts/fetch-models.sh)"
MODEL_FILE=models/$MODEL/$(sed -n 's/^model *= *"\(.*\)"/\1/p' "models/$MODEL/manifest.toml")
[ -f "$MODEL_FILE" ] || die "$MODEL_FILE missing (scripts/fetch-models.sh)"

# find_cuda_libs: prints the directories (colon-separated) that hold CUDA or cuDNN libraries, from CUDA_HOME and
# from pip's nvidia-* packages. Libraries in the system library path need no entry.
find_cuda_libs() {
  local dirs=() d root roots=
  if [ -n "${CUDA_HOME:-}" ]; then
    for d in "$CUDA_HOME"/lib64 "$CUDA_HOME"/targets/*/lib; do [ -d "$d" ] && dirs+=("$d"); done
  fi
  if command -v python3 >/dev/null; then
    roots=$(python3 -c 'import nvidia; print("\n".join(nvidia.__path__))' 2>/dev/null) || roots=
  fi
  while IFS= read -r root; do
    [ -n "$root" ] || continue
    for d in "$root"/*/lib; do [ -d "$d" ] && dirs+=("$d"); done
  done <<<"$roots"
  local IFS=:
  echo "${dirs[*]}"
}
if [ -z "${CUDA_LIBS:-}" ]; then
  CUDA_LIBS=$(find_cuda_libs)
  say "CUDA_LIBS unset; found: ${CUDA_LIBS:-nothing beyond the system library path}"
fi
# The CUDA provider must find every library it links against (CUDA runtime, cuBLAS, cuFFT, cuRAND, cuDNN).
command -v ldd >/dev/null || die "ldd not found (Debian package libc-bin)"
deps=$(LD_LIBRARY_PATH="$ORT_DIR:$CUDA_LIBS:${LD_LIBRARY_PATH:-}" ldd "$ORT_DIR/libonnxruntime_providers_cuda.so") \
  || die "cannot read $ORT_DIR/libonnxruntime_providers_cuda.so's dependencies (ldd failed)"
unresolved=$(awk '/not found/ {print $1}' <<<"$deps" | tr '\n' ' ')
[ -z "$unresolved" ] || die "libonnxruntime_providers_cuda.so needs ${unresolved}which are not in CUDA_LIBS (${CUDA_LIBS:-empty})
  nor in the system library path: set CUDA_LIBS to the directories holding the CUDA 13 and cuDNN 9 libraries
  (a CUDA 13 toolkit's lib64, or the lib directories of pip's nvidia-*-cu13 and nvidia-cudnn-cu13 packages), or
  CUDA_HOME to a CUDA 13 toolkit. See this script's header."
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this check needs an NVIDIA GPU and its driver"

mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv >"$OUT/nvidia-smi.csv" \
  || die "nvidia-smi failed (no GPU or driver?)"
cat "$OUT/nvidia-smi.csv"

# --- Step outcomes, printed as the summary table at the end (also when the script stops early).
STEPS=()
any_failed=0
NOCUDA=
# record STEP RESULT REASON: RESULT is ok, skipped or FAILED.
record() {
  STEPS+=("$1"$'\t'"$2"$'\t'"$3")
  [ "$2" != FAILED ] || any_failed=1
}
summary() {
  local s step result reason
  echo "== summary"
  printf '%-30s %-8s %s\n' step result reason
  for s in "${STEPS[@]}"; do
    IFS=$'\t' read -r step result reason <<<"$s"
    printf '%-30s %-8s %s\n' "$step" "$result" "$reason"
  done
}
finish() {
  local rc=$?
  [ -z "$NOCUDA" ] || rm -rf "$NOCUDA"
  rm -rf "$OUT"/work-*
  if [ "$rc" != 0 ] && [ "$any_failed" = 0 ]; then
    record "(script)" FAILED "stopped early with exit status $rc"
  fi
  summary
  if [ "$rc" = 0 ] && [ "$any_failed" = 1 ]; then rc=1; fi
  exit "$rc"
}
trap finish EXIT

# bench SECONDS ARGS...: the session benchmark on CUDA, killed after SECONDS.
bench() {
  local limit=$1; shift
  timeout "$limit" "$BIN/scenequeue-bench" sessions --device cuda --ort-library "$LIB" --scenequeue "$BIN/scenequeue" \
    --model "$MODEL" "$@"
}

# run_step STEP SECONDS NAME ARGS...: runs one benchmark (table in $OUT/NAME.md, log in $OUT/NAME.log), prints
# its result line and records the outcome: a non-zero exit, a timeout, a missing table or a failed scene fails it.
run_step() {
  local step=$1 limit=$2 name=$3 rc=0 row cols
  shift 3
  bench "$limit" "$@" >"$OUT/$name.md" 2>"$OUT/$name.log" || rc=$?
  row=$(tail -n 1 "$OUT/$name.md")
  echo "$row"
  # Table columns: policy, jobs, scenes, failed, OOM, recovered, ...
  cols=$(awk -F'|' 'NF > 8 { for (i = 3; i <= 7; i++) { gsub(/ /, "", $i); printf "%s ", $i } }' <<<"$row")
  local jobs scenes failed ooms recovered
  read -r jobs scenes failed ooms recovered <<<"$cols" || true
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    record "$step" FAILED "timed out after $limit s (log: $OUT/$name.log)"
  elif [ "$rc" != 0 ]; then
    local why
    why=$(grep -m1 -io 'error.*' "$OUT/$name.log" | cut -c1-120 || true)
    record "$step" FAILED "exited with $rc: ${why:-see $OUT/$name.log}"
  elif [ -z "${failed:-}" ]; then
    record "$step" FAILED "no result table in $OUT/$name.md"
  elif [ "$failed" != 0 ]; then
    record "$step" FAILED "$failed of $scenes scenes failed ($ooms OOM, $recovered recovered)"
  else
    record "$step" ok "$scenes scenes in $jobs jobs, $ooms OOM, $recovered recovered"
  fi
}

# 1. A missing CUDA provider library is an error, never a silent CPU run.
if [ "${SKIP_STEP1:-0}" = 1 ]; then
  echo "skipped" > "$OUT/step1.txt"
  record "1. no CUDA provider" skipped "SKIP_STEP1=1"
else
  echo "== 1. CUDA registration without libonnxruntime_providers_cuda.so must fail"
  NOCUDA=$(mktemp -d)
  cp "$LIB" "$ORT_DIR/libonnxruntime_providers_shared.so" "$NOCUDA/"
  if timeout 60 "$BIN/scenequeue-bench" sessions --device cuda --ort-library "$NOCUDA/$(basename "$LIB")" \
       --model "$MODEL" --scenes 1 --policies per-job --out "$OUT/work-noload" >"$OUT/noload.md" 2>"$OUT/noload.log"; then
    echo "FAILED: ran without CUDA libraries" | tee "$OUT/step1.txt"
    record "1. no CUDA provider" FAILED "ran without libonnxruntime_providers_cuda.so"
  else
    why=$(grep -m1 -o 'error.*' "$OUT/noload.log" | cut -c1-200 || true)
    echo "ok: refused ($why)" | tee "$OUT/step1.txt"
    record "1. no CUDA provider" ok "refused: $(cut -c1-80 <<<"$why")"
  fi
fi

export LD_LIBRARY_PATH="$ORT_DIR:$CUDA_LIBS:${LD_LIBRARY_PATH:-}"

# 2. Real out-of-memory errors on the GPU: small arena caps make long scenes fail; recovery must finish them.
# OOM_CPU_FALLBACK=0 leaves the scenes to the windows alone.
fallback=
if [ "${OOM_CPU_FALLBACK:-1}" = 1 ]; then fallback=--cpu-fallback; fi
for cap in ${OOM_CAPS:-96 160}; do
  echo "== 2. OOM recovery on the GPU (arena capped at $cap MiB, ${fallback:-no CPU fallback})"
  run_step "2. OOM recovery, $cap MiB" 120 "oom-$cap" --policies per-job --scenes 4 --min-scene-s 60 \
    --max-scene-s 220 --gpu-mem-limit-mb "$cap" $fallback --time-limit-s 60 --out "$OUT/work-oom"
  # How each recovery went: the warnings, counted (none is fine).
  { grep "WARN" "$OUT/oom-$cap.log" || true; } | sed 's/ error=.*//' | cut -c29-120 | sort | uniq -c
done

# 3. Every policy over the same scenes, under an 8 GB cap.
if [ -n "$POLICIES" ]; then
  echo "== 3. Session policies: $SCENES scenes of 1-220 s, arena capped at $MEM_LIMIT_MB MiB"
fi
for p in $POLICIES; do
  run_step "3. policy $p" $((POLICY_TIME_S * 3)) "policy-$p" --policies "$p" --scenes "$SCENES" \
    --gpu-mem-limit-mb "$MEM_LIMIT_MB" --time-limit-s "$POLICY_TIME_S" --out "$OUT/work-$p"
done
# 4. Fixed-shape windows (FIXED): every call the same shape; the arena should stay flat from the first call.
for f in $FIXED; do
  echo "== 4. Fixed windows $f (per-job), $SCENES scenes, arena capped at $MEM_LIMIT_MB MiB"
  run_step "4. fixed windows $f" $((POLICY_TIME_S * 3)) "fixed-${f//:/-}" --policies per-job --fixed-windows "$f" \
    --scenes "$SCENES" --gpu-mem-limit-mb "$MEM_LIMIT_MB" --time-limit-s "$POLICY_TIME_S" --out "$OUT/work-fixed"
done
# 5. Whisper after the enhancer in one worker (per-job): both stages' sessions dropped after every job, so GPU
# memory must come back to its baseline each time. ASR_MODEL= skips it.
ASR_MODEL=${ASR_MODEL-whisper-tiny.en}
if [ -n "$ASR_MODEL" ]; then
  echo "== 5. $MODEL then $ASR_MODEL in the same job (per-job), $SCENES scenes, arena capped at $MEM_LIMIT_MB MiB"
  run_step "5. enhance + $ASR_MODEL" $((POLICY_TIME_S * 3)) "asr" --policies per-job --transcribe "$ASR_MODEL" \
    --scenes "$SCENES" --max-scene-s 60 --gpu-mem-limit-mb "$MEM_LIMIT_MB" --time-limit-s "$POLICY_TIME_S" \
    --out "$OUT/work-asr"
fi
{
  head -q -n 3 "$OUT"/policy-*.md "$OUT"/fixed-*.md 2>/dev/null | head -n 3 || true
  for p in $POLICIES; do tail -n 1 "$OUT/policy-$p.md"; done
  for f in $FIXED; do echo "fixed $f: $(tail -n 1 "$OUT/fixed-${f//:/-}.md")"; done
  [ -z "$ASR_MODEL" ] || echo "enhance + $ASR_MODEL: $(tail -n 1 "$OUT/asr.md")"
} > "$OUT/policies.md"
echo "== results"
cat "$OUT/step1.txt"; echo; tail -q -n 1 "$OUT"/oom-*.md 2>/dev/null || true; echo; cat "$OUT/policies.md"
