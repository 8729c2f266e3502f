#!/usr/bin/env bash
# Fetches what `scenequeue-bench transcription` needs besides the models (scripts/fetch-models.sh):
#   - Debian packages espeak-ng (the speech whose words are known) and sox;
#   - PyPI pocketsphinx 5.0.4, an offline recogniser that bundles its US English model, installed with no
#     dependencies into .scenequeue/pocketsphinx/ (put on PYTHONPATH by the benchmark), from a wheel checked
#     against a pinned SHA-256 for the machine's Python (3.11, 3.12 or 3.13).
# Idempotent: an installation already in place is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

PS_VERSION=5.0.4
declare -A PS_SHA=(
  [311]=a3541ad8b6ce00230bd96fe520d48c3a252e031531bc8337dfccf7553cbca998
  [312]=efd1ab4a14560764b4d635f4995994e6d94d6fa70a00f5e38d08418a90ea8547
  [313]=51d220084d0f465608894ef885c0d03936d56998c858abc0f96bf81f0cc924b1
)
dest=.scenequeue/pocketsphinx
cache=.scenequeue/cache

apt_install espeak-ng sox
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  apt_install python3 python3-pip
fi
py=$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
sha=${PS_SHA[$py]:-}
[ -n "$sha" ] || die "no pinned pocketsphinx $PS_VERSION wheel for Python ${py:0:1}.${py:1} (pinned: 3.11, 3.12, 3.13)"

if [ -f "$dest/.version-$PS_VERSION-cp$py" ] && PYTHONPATH=$dest python3 -c 'import pocketsphinx' 2>/dev/null; then
  say "pocketsphinx $PS_VERSION: $dest"
  exit 0
fi
mkdir -p "$cache"
whl=$(ls "$cache"/pocketsphinx-"$PS_VERSION"-cp"$py"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$whl" ]; then
  say "downloading pocketsphinx==$PS_VERSION (cp$py) from PyPI"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$cache" "pocketsphinx==$PS_VERSION" \
    || die "pip could not download pocketsphinx==$PS_VERSION (is PyPI reachable?)"
  whl=$(ls "$cache"/pocketsphinx-"$PS_VERSION"-cp"$py"-*.whl | head -n1)
fi
echo "$sha  $whl" | sha256sum -c --quiet - || die "$whl does not match its pinned SHA-256"
rm -rf "$dest"
python3 -m pip install -q --no-deps --no-index --target "$dest" "$whl" || die "pip could not install $whl into $dest"
touch "$dest/.version-$PS_VERSION-cp$py"
say "pocketsphinx $PS_VERSION: $dest"
