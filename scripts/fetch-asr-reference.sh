#!/usr/bin/env bash
# Installs what the Whisper stage is checked against in the tests and `scenequeue-bench transcription`:
# faster-whisper 1.2.1 from PyPI (CTranslate2 underneath), with its dependencies, into .scenequeue/faster-whisper/
# (put on PYTHONPATH by tests/support/faster_whisper_ref.py's callers). A test helper only: the farm never runs it.
# Idempotent: an installation already in place is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

FW_VERSION=1.2.1
dest=.scenequeue/faster-whisper

if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  apt_install python3 python3-pip
fi
if [ -f "$dest/.version-$FW_VERSION" ] && PYTHONPATH=$dest python3 -c 'import faster_whisper' 2>/dev/null; then
  say "faster-whisper $FW_VERSION: $dest"
  exit 0
fi
say "installing faster-whisper==$FW_VERSION and its dependencies from PyPI into $dest"
rm -rf "$dest"
python3 -m pip install -q --only-binary=:all: --target "$dest" "faster-whisper==$FW_VERSION" >&2 \
  || die "pip could not install faster-whisper==$FW_VERSION (is PyPI reachable?)"
touch "$dest/.version-$FW_VERSION"
say "faster-whisper $FW_VERSION: $dest"
