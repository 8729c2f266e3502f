#!/bin/sh
# First start: initdb with the superuser password from POSTGRES_PASSWORD_FILE, scram-sha-256 for every host
# connection, then the init scripts against a server that listens on its socket only. Then postgres, as postgres.
set -eu
: "${POSTGRES_USER:=postgres}"
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
as_pg() { runuser -u postgres -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD_FILE:-}" ] || { echo "POSTGRES_PASSWORD_FILE is required" >&2; exit 1; }
  pwfile=$(mktemp)
  cat "$POSTGRES_PASSWORD_FILE" > "$pwfile"
  chown postgres "$pwfile"
  as_pg initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  export POSTGRES_USER
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    echo "running $f"
    case "$f" in
      *.sh) as_pg env POSTGRES_USER="$POSTGRES_USER" PGDATA="$PGDATA" sh "$f" ;;
      *.sql) as_pg psql -X -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -f "$f" ;;
    esac
  done
  as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
[ "$1" = postgres ] && shift
exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
