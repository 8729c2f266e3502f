#!/usr/bin/env bash
# The GPU check: runs the worker's inference path (session policies, CUDA settings, memory telemetry, OOM
# recovery) on a CUDA machine with the real model, and prints one table per step.
#
#   scripts/gpu-check.sh [OUT_DIR]
#
# Needs: release binaries (BIN_DIR, default target/release: scenequeue and scenequeue-bench), the model files
# (models/nsnet2-48k), ONNX Runtime's CUDA build (ORT_DIR, default /tmp/ort: libonnxruntime.so.1.31.1 with
# libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so beside it, from PyPI onnxruntime-gpu
# 1.31.1) and the CUDA 13 / cuDNN 9 libraries (CUDA_LIBS, a colon-separated list of directories).
# Tunables: SCENES (200), POLICIES, POLICY_TIME_S (per policy: no new job starts after it; the table says how
# many scenes ran), MEM_LIMIT_MB (8192: an 8 GB card).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check-out}
ORT_DIR=${ORT_DIR:-/tmp/ort}
BIN=${BIN_DIR:-target/release}
SCENES=${SCENES:-200}
POLICIES=${POLICIES:-per-job process persistent every-4-jobs held-above-1024 shrink-each-run}
POLICY_TIME_S=${POLICY_TIME_S:-60}
MEM_LIMIT_MB=${MEM_LIMIT_MB:-8192}
V=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
CUDA_LIBS=${CUDA_LIBS:-/usr/local/cuda-13.0/targets/x86_64-linux/lib:$V/cu13/lib:$V/cudnn/lib}
LIB=$ORT_DIR/libonnxruntime.so.1.31.1

mkdir -p "$OUT"
[ -x "$BIN/scenequeue-bench" ] || { echo "error: $BIN/scenequeue-bench missing (cargo build --release)" >&2; exit 1; }
[ -f "$LIB" ] || { echo "error: $LIB missing (ONNX Runtime CUDA build)" >&2; exit 1; }
[ -f models/nsnet2-48k/nsnet2-20ms-48k-baseline.onnx ] || { echo "error: model missing (scripts/fetch-models.sh)" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"

bench() { "$BIN/scenequeue-bench" sessions --device cuda --ort-library "$LIB" --scenequeue "$BIN/scenequeue" "$@"; }

# 1. A missing CUDA library is an error, never a silent CPU run.
echo "== 1. CUDA registration without the CUDA libraries must fail"
if LD_LIBRARY_PATH="$ORT_DIR" timeout 60 "$BIN/scenequeue-bench" sessions --device cuda --ort-library "$LIB" \
     --scenes 1 --policies per-job --out "$OUT/work-noload" >"$OUT/noload.md" 2>"$OUT/noload.log"; then
  echo "FAILED: ran without CUDA libraries" | tee "$OUT/step1.txt"
else
  echo "ok: refused ($(grep -m1 -o 'error.*' "$OUT/noload.log" | cut -c1-200))" | tee "$OUT/step1.txt"
fi

export LD_LIBRARY_PATH="$ORT_DIR:$CUDA_LIBS:${LD_LIBRARY_PATH:-}"

# 2. Real out-of-memory errors on the GPU: a tiny arena cap makes long scenes fail; recovery must finish them.
echo "== 2. OOM recovery on the GPU (arena capped at 48 MiB, CPU fallback on)"
timeout 120 bench --policies per-job --scenes 8 --min-scene-s 20 --max-scene-s 120 --gpu-mem-limit-mb 48 \
  --cpu-fallback --time-limit-s 60 --out "$OUT/work-oom" >"$OUT/oom.md" 2>"$OUT/oom.log" || echo "step 2 exited with $?"
cat "$OUT/oom.md"; grep -m3 -i "out of memory" "$OUT/oom.log" | cut -c1-300

# 3. Every policy over the same scenes, under an 8 GB cap.
echo "== 3. Session policies: $SCENES scenes of 1-220 s, arena capped at $MEM_LIMIT_MB MiB"
for p in $POLICIES; do
  timeout $((POLICY_TIME_S * 3)) bench --policies "$p" --scenes "$SCENES" --gpu-mem-limit-mb "$MEM_LIMIT_MB" \
    --time-limit-s "$POLICY_TIME_S" --out "$OUT/work-$p" >"$OUT/policy-$p.md" 2>"$OUT/policy-$p.log" || echo "policy $p exited with $? (124: timed out)"
  tail -n 1 "$OUT/policy-$p.md"
done
{
  head -n 3 "$OUT/policy-per-job.md" 2>/dev/null
  for p in $POLICIES; do tail -n 1 "$OUT/policy-$p.md" 2>/dev/null; done
} > "$OUT/policies.md"
rm -rf "$OUT"/work-*
echo "== summary"
cat "$OUT/step1.txt"; echo; cat "$OUT/oom.md"; echo; cat "$OUT/policies.md"
