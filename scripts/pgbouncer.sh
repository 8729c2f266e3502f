#!/usr/bin/env bash
# Prints the path of a PgBouncer that can pool scenequeue's connections in transaction mode, installing one if
# needed. The database driver prepares every statement under a name, which a transaction-mode pooler must track
# per server connection: PgBouncer does that from 1.21 (`max_prepared_statements`). Debian 13 packages 1.24;
# Debian 12 packages 1.18, so there this builds Debian 13's source package (upstream 1.24.1 with Debian's
# security patches, checked against scripts/pins.sha256) into .scenequeue/pgbouncer/.
# Usage: scripts/pgbouncer.sh            (prints e.g. /usr/sbin/pgbouncer or $PWD/.scenequeue/pgbouncer/pgbouncer)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

NEEDED=1.21
VERSION=1.24.1
DEBIAN_REVISION=1+deb13u2
POOL=http://deb.debian.org/debian/pool/main/p/pgbouncer
OUT=$PWD/.scenequeue/pgbouncer

# version_ok BINARY: true when BINARY runs and reports a version of at least $NEEDED.
version_ok() {
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/^PgBouncer \([0-9][0-9.]*\).*/\1/p' | head -n1)
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$NEEDED" "$v" | sort -V | head -n1)" = "$NEEDED" ]
}

for candidate in "$OUT/pgbouncer" /usr/sbin/pgbouncer "$(command -v pgbouncer || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && version_ok "$candidate"; then
    echo "$candidate"
    exit 0
  fi
done

# Debian's own package first: on Debian 13 and later it is new enough.
if apt-cache policy pgbouncer 2>/dev/null | grep -q 'Candidate: 1\.\(2[1-9]\|[3-9][0-9]\)'; then
  apt_install pgbouncer
  version_ok /usr/sbin/pgbouncer && { echo /usr/sbin/pgbouncer; exit 0; }
fi

say "building PgBouncer $VERSION from Debian's source package (this Debian packages an older one)"
apt_install curl ca-certificates gcc make pkg-config patch libevent-dev libssl-dev libc-ares-dev
work=$PWD/.scenequeue/pgbouncer-build
rm -rf "$work"
mkdir -p "$work" "$OUT"
for f in "pgbouncer_$VERSION.orig.tar.gz" "pgbouncer_$VERSION-$DEBIAN_REVISION.debian.tar.xz"; do
  curl -fsS --retry 3 -o "$work/$f" "$POOL/$f" || die "cannot download $POOL/$f"
  want=$(awk -v f="pgbouncer/$f" '$2 == f { print $1 }' scripts/pins.sha256)
  [ -n "$want" ] || die "no pinned SHA-256 for pgbouncer/$f in scripts/pins.sha256"
  got=$(sha256sum < "$work/$f"); got=${got%% *}
  [ "$got" = "$want" ] || die "$f does not match its pinned SHA-256 (expected $want, got $got)"
done
(
  cd "$work"
  tar xzf "pgbouncer_$VERSION.orig.tar.gz"
  cd "pgbouncer-$VERSION"
  tar xJf "../pgbouncer_$VERSION-$DEBIAN_REVISION.debian.tar.xz"
  # Debian's patches, in their order; the one that only changes Debian's default paths is left out.
  while read -r p; do
    case "$p" in ''|'#'*|debian-config) continue ;; esac
    patch -s -p1 < "debian/patches/$p"
  done < debian/patches/series
  ./configure -q --with-cares --without-pam --without-systemd >/dev/null
  make -s -j"$(nproc)" >/dev/null
) > "$work/build.log" 2>&1 || die "building PgBouncer failed; see $work/build.log"
install -m 0755 "$work/pgbouncer-$VERSION/pgbouncer" "$OUT/pgbouncer"
rm -rf "$work"
version_ok "$OUT/pgbouncer" || die "the PgBouncer built in $OUT does not run"
echo "$OUT/pgbouncer"
