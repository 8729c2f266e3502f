# shellcheck shell=bash
# Shared helpers for the scripts in this directory (sourced, not run).

die() { echo "error: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"; fi
}

APT_UPDATED=
# apt_install PKG...: installs the Debian packages that are missing.
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq || die "apt-get update failed"; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# Rust toolchain: cargo must be on PATH (rustup installs it; Debian's cargo is too old for edition 2024).
need_cargo() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  command -v cargo >/dev/null || die "cargo not found: install Rust 1.92 or newer (https://rustup.rs), then rerun"
}

# compose_submit JOB_SECONDS: submits the stack's recordings (/data/in) through the caller's `compose` function
# and prints the new batch's id; dies with what submit said when it fails or names no batch.
compose_submit() {
  local out batch
  out=$(compose run --rm --no-deps scheduler submit /data/in --out /data/out --job-seconds "$1" 2>&1) \
    || die "submit failed: $out"
  batch=$(grep -m1 -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' <<<"$out" || true)
  [ -n "$batch" ] || die "no batch id in: $out"
  echo "$batch"
}
