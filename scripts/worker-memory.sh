#!/usr/bin/env bash
# One worker's host memory on a fixed case, for comparing builds side by side (docs/BENCHMARKS.md, "A lean
# worker"): RECORDINGS recordings of espeak-ng speech of SECONDS each with pink noise mixed in, submitted with the
# defaults to a database and a queue of their own, drained by one `scenequeue worker --drain` under
# /usr/bin/time -v. Prints the peak resident memory, x real time (audio over the scenes' processing time), the
# resident memory after each job (`rss_after_mb`) and a digest of every output byte; then drops the database and
# the queue.
#
# Usage: scripts/worker-memory.sh [--recordings N] [--seconds S] [--one-scene S] [--bin PATH] [--dir DIR] [--keep]
#                                   [-- WORKER FLAGS]
#   --recordings  how many recordings (default 12)
#   --seconds     length of each (default 44)
#   --one-scene   instead, one recording of S seconds (the recordings above, repeated) submitted as one scene
#   --bin         the scenequeue binary (default target/release/scenequeue)
#   --dir         where the corpus and the outputs go (default /tmp/sq-worker-memory)
#   --keep        keep the database, the queue and the outputs
# Needs espeak-ng, sox, GNU time, psql and rabbitmqctl; SCENEQUEUE_ORT_LIBRARY and SCENEQUEUE_MODEL_DIR as for
# the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

recordings=12 seconds=44 one_scene="" bin=${CARGO_TARGET_DIR:-target}/release/scenequeue dir=/tmp/sq-worker-memory keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --recordings) recordings=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --one-scene) one_scene=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --) shift; break ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
  esac
done
for tool in espeak-ng sox psql rabbitmqctl; do
  command -v "$tool" >/dev/null || die "$tool is needed (apt-get install espeak-ng sox postgresql-client rabbitmq-server)"
done
[ -x /usr/bin/time ] || die "GNU time is needed at /usr/bin/time (apt-get install time)"
[ -x "$bin" ] || die "no scenequeue binary at $bin (cargo build --release)"

texts=(
  "The brown horse walked past the lazy dog while the farmer watched from the old wooden gate."
  "Please call the office before noon if the train is late, and leave a short message for the manager."
  "We need more time to finish the report, so the meeting will move to Thursday afternoon."
  "Heavy rain fell across the northern valley last night, and several roads were closed until morning."
  "She opened the window, looked at the quiet street below, and decided to walk to the market."
  "The doctor asked the patient to take the medicine twice a day with a glass of warm water."
)

corpus="$dir/corpus-${recordings}x${seconds}s"
if [ ! -f "$corpus/.done" ]; then
  say "making $recordings recordings of $seconds s in $corpus"
  rm -rf "$corpus" && mkdir -p "$corpus/in" "$corpus/tmp"
  for ((i = 0; i < recordings; i++)); do
    # Each recording reads the sentences from its own starting point, at its own speed, until it is long enough.
    text=""
    for ((k = 0; k < 12; k++)); do text+="${texts[$(((i + k) % 6))]} "; done
    espeak-ng -v en-us -s $((150 + 2 * i)) -g 12 -w "$corpus/tmp/speech.wav" "$text"
    sox "$corpus/tmp/speech.wav" -r 48000 -c 1 "$corpus/tmp/clean.wav" trim 0 "$seconds" pad 0 "$seconds" trim 0 "$seconds"
    sox -R -n -r 48000 -c 1 "$corpus/tmp/noise.wav" synth "$seconds" pinknoise vol 0.04
    sox -m "$corpus/tmp/clean.wav" "$corpus/tmp/noise.wav" -b 16 "$corpus/in/rec$(printf %02d "$i").wav"
  done
  rm -rf "$corpus/tmp"
  touch "$corpus/.done"
fi

input="$corpus/in" submit_flags=()
if [ -n "$one_scene" ]; then
  input="$dir/one-scene-${one_scene}s"
  if [ ! -f "$input/one.wav" ]; then
    mkdir -p "$input"
    sox "$corpus"/in/*.wav "$dir/all.wav"
    repeats=$(awk -v s="$one_scene" -v n="$recordings" -v t="$seconds" 'BEGIN { print int(s / (n * t)) }')
    sox "$dir/all.wav" "$input/one.wav" repeat "$repeats" pad 0 "$one_scene" trim 0 "$one_scene"
    rm -f "$dir/all.wav"
  fi
  # Scenes are never cut: no pause is long enough and none is too long.
  submit_flags=(--max-scene-s $((one_scene + 10)) --min-silence-s 10000 --split-silence-s 10000 --job-seconds $((one_scene + 10)))
fi

name="sq_memory_$$"
db_url="postgres://postgres@127.0.0.1:5432/$name"
out="$dir/out-$$"
cleanup() {
  if [ "$keep" = 0 ]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $name" >/dev/null 2>&1 || true
    rabbitmqctl -q delete_queue "$name" >/dev/null 2>&1 || true
    rm -rf "$out"
  fi
}
trap cleanup EXIT
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $name" >/dev/null || die "cannot create database $name"
export SCENEQUEUE_DATABASE_URL=$db_url SCENEQUEUE_QUEUE=$name
"$bin" submit "$input" --out "$out" "${submit_flags[@]}" >/dev/null 2>&1 || die "submit failed"

/usr/bin/time -v -o "$dir/time-$$.txt" "$bin" worker --drain "$@" >"$dir/worker-$$.log" 2>&1 ||
  die "the worker failed (log: $dir/worker-$$.log)"
peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time-$$.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time-$$.txt")
rm -f "$dir/time-$$.txt"

q() { psql -h 127.0.0.1 -U postgres -d "$name" -Atq -c "$1"; }
scenes=$(q "SELECT count(*) || ' scenes of ' || round(min(duration_s)::numeric, 1) || '-' || round(max(duration_s)::numeric, 1) || ' s (' || round(sum(duration_s)::numeric) || ' s)' FROM results")
speed=$(q "SELECT round((sum(duration_s) / (sum(processing_ms) / 1000))::numeric, 1) FROM results")
after=$(q "SELECT string_agg(round(rss_after_mb)::text, ' ' ORDER BY finished_at) FROM jobs WHERE rss_after_mb IS NOT NULL")
failed=$(q "SELECT count(*) FROM scenes WHERE state <> 'succeeded'")
digest=$(find "$out" -type f -name '*.wav' | sort | xargs cat | sha256sum | cut -c1-16)
files=$(find "$out" -type f -name '*.wav' | wc -l)

echo "case:             $(if [ -n "$one_scene" ]; then echo "one recording of $one_scene s"; else echo "$recordings recordings of $seconds s"; fi), $scenes"
echo "peak RSS:         $((peak_kb / 1024)) MiB"
echo "x real time:      $speed"
echo "worker wall time: $wall"
echo "rss_after_mb:     $after"
echo "not done:         $failed"
echo "outputs:          $files files, sha256 of their bytes in order ${digest}"
[ "$failed" = 0 ] || die "$failed scenes did not finish (log: $dir/worker-$$.log)"
rm -f "$dir/worker-$$.log"
