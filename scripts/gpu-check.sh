#!/usr/bin/env bash
# The GPU check: runs the worker's inference path (session policies, CUDA settings, memory telemetry, OOM
# recovery) on a CUDA machine with the real model, and prints one table per step.
#
#   scripts/gpu-check.sh [OUT_DIR]
#
# Needs: release binaries (BIN_DIR, default target/release: scenequeue and scenequeue-bench), the model files
# (models/$MODEL, default nsnet2-48k; deepfilternet3 works too), ONNX Runtime's CUDA build (ORT_DIR, default
# /tmp/ort: libonnxruntime.so.1.31.1 with libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so
# beside it, from PyPI onnxruntime-gpu 1.31.1) and the CUDA 13 / cuDNN 9 libraries (CUDA_LIBS, a colon-separated list of directories).
# Tunables: SCENES (200), POLICIES, POLICY_TIME_S (per policy: no new job starts after it; the table says how
# many scenes ran), MEM_LIMIT_MB (8192: an 8 GB card), FIXED (step 4, off by default: fixed-shape window settings
# WINDOW_S:OVERLAP_S:BATCH, space-separated, each run with the per-job policy over the same scenes).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check-out}
ORT_DIR=${ORT_DIR:-/tmp/ort}
BIN=${BIN_DIR:-target/release}
SCENES=${SCENES:-200}
POLICIES=${POLICIES-per-job process persistent every-4-jobs held-above-1024 shrink-each-run}
POLICY_TIME_S=${POLICY_TIME_S:-60}
MEM_LIMIT_MB=${MEM_LIMIT_MB:-8192}
MODEL=${MODEL:-nsnet2-48k}
FIXED=${FIXED:-}
V=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
CUDA_LIBS=${CUDA_LIBS:-/usr/local/cuda-13.0/targets/x86_64-linux/lib:$V/cu13/lib:$V/cudnn/lib}
LIB=$ORT_DIR/libonnxruntime.so.1.31.1

mkdir -p "$OUT"
[ -x "$BIN/scenequeue-bench" ] || { echo "error: $BIN/scenequeue-bench missing (cargo build --release)" >&2; exit 1; }
[ -f "$LIB" ] || { echo "error: $LIB missing (ONNX Runtime CUDA build)" >&2; exit 1; }
MODEL_FILE=models/$MODEL/$(sed -n 's/^model *= *"\(.*\)"/\1/p' "models/$MODEL/manifest.toml" 2>/dev/null)
[ -f "$MODEL_FILE" ] || { echo "error: $MODEL_FILE missing (scripts/fetch-models.sh)" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"

# bench SECONDS ARGS...: the session benchmark on CUDA, killed after SECONDS.
bench() {
  local limit=$1; shift
  timeout "$limit" "$BIN/scenequeue-bench" sessions --device cuda --ort-library "$LIB" --scenequeue "$BIN/scenequeue" \
    --model "$MODEL" "$@"
}

# 1. A missing CUDA provider library is an error, never a silent CPU run.
echo "== 1. CUDA registration without libonnxruntime_providers_cuda.so must fail"
NOCUDA=$(mktemp -d)
cp "$LIB" "$ORT_DIR/libonnxruntime_providers_shared.so" "$NOCUDA/"
if [ "${SKIP_STEP1:-0}" = 1 ]; then
  echo "skipped" > "$OUT/step1.txt"
elif timeout 60 "$BIN/scenequeue-bench" sessions --device cuda --ort-library "$NOCUDA/libonnxruntime.so.1.31.1" \
     --model "$MODEL" --scenes 1 --policies per-job --out "$OUT/work-noload" >"$OUT/noload.md" 2>"$OUT/noload.log"; then
  echo "FAILED: ran without CUDA libraries" | tee "$OUT/step1.txt"
else
  echo "ok: refused ($(grep -m1 -o 'error.*' "$OUT/noload.log" | cut -c1-200))" | tee "$OUT/step1.txt"
fi

export LD_LIBRARY_PATH="$ORT_DIR:$CUDA_LIBS:${LD_LIBRARY_PATH:-}"

# 2. Real out-of-memory errors on the GPU: small arena caps make long scenes fail; recovery must finish them.
# OOM_CPU_FALLBACK=0 leaves the scenes to the windows alone.
fallback=$([ "${OOM_CPU_FALLBACK:-1}" = 1 ] && echo --cpu-fallback)
for cap in ${OOM_CAPS:-96 160}; do
  echo "== 2. OOM recovery on the GPU (arena capped at $cap MiB, ${fallback:-no CPU fallback})"
  bench 120 --policies per-job --scenes 4 --min-scene-s 60 --max-scene-s 220 --gpu-mem-limit-mb "$cap" \
    $fallback --time-limit-s 60 --out "$OUT/work-oom" >"$OUT/oom-$cap.md" 2>"$OUT/oom-$cap.log" \
    || echo "step 2 ($cap MiB) exited with $?"
  tail -n 1 "$OUT/oom-$cap.md"; grep "WARN" "$OUT/oom-$cap.log" | sed 's/ error=.*//' | cut -c29-120 | sort | uniq -c
done

# 3. Every policy over the same scenes, under an 8 GB cap.
[ -z "$POLICIES$FIXED" ] && { cat "$OUT/step1.txt"; tail -q -n 1 "$OUT"/oom-*.md; exit 0; }
[ -n "$POLICIES" ] && echo "== 3. Session policies: $SCENES scenes of 1-220 s, arena capped at $MEM_LIMIT_MB MiB"
for p in $POLICIES; do
  bench $((POLICY_TIME_S * 3)) --policies "$p" --scenes "$SCENES" --gpu-mem-limit-mb "$MEM_LIMIT_MB" \
    --time-limit-s "$POLICY_TIME_S" --out "$OUT/work-$p" >"$OUT/policy-$p.md" 2>"$OUT/policy-$p.log" || echo "policy $p exited with $? (124: timed out)"
  tail -n 1 "$OUT/policy-$p.md"
done
# 4. Fixed-shape windows (FIXED): every call the same shape; the arena should stay flat from the first call.
for f in $FIXED; do
  echo "== 4. Fixed windows $f (per-job), $SCENES scenes, arena capped at $MEM_LIMIT_MB MiB"
  bench $((POLICY_TIME_S * 3)) --policies per-job --fixed-windows "$f" --scenes "$SCENES" \
    --gpu-mem-limit-mb "$MEM_LIMIT_MB" --time-limit-s "$POLICY_TIME_S" --out "$OUT/work-fixed" \
    >"$OUT/fixed-${f//:/-}.md" 2>"$OUT/fixed-${f//:/-}.log" || echo "fixed $f exited with $?"
  tail -n 1 "$OUT/fixed-${f//:/-}.md"
done
{
  head -q -n 3 "$OUT"/policy-*.md "$OUT"/fixed-*.md 2>/dev/null | head -n 3
  for p in $POLICIES; do tail -n 1 "$OUT/policy-$p.md" 2>/dev/null; done
  for f in $FIXED; do echo "fixed $f: $(tail -n 1 "$OUT/fixed-${f//:/-}.md" 2>/dev/null)"; done
} > "$OUT/policies.md"
rm -rf "$OUT"/work-*
echo "== summary"
cat "$OUT/step1.txt"; echo; tail -q -n 1 "$OUT"/oom-*.md; echo; cat "$OUT/policies.md"
