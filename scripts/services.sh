#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer on localhost: starts them when installed but stopped, installs them
# from Debian's packages when missing, and creates the `scenequeue` role and database (password `scenequeue`,
# allowed to create databases, which the tests need) when the default database URL is used.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT NAME SECONDS
wait_port() {
  local i
  for ((i = 0; i < $3; i++)); do answers "$1" && return 0; sleep 1; done
  die "$2 does not answer on 127.0.0.1:$1 after $3 s"
}

if ! answers 5432; then
  if ! command -v pg_ctlcluster >/dev/null; then apt_install postgresql; fi
  for d in /etc/postgresql/*/; do
    [ -d "$d" ] || continue
    v=$(basename "$d")
    say "starting PostgreSQL $v"
    # One cluster that does not start is not fatal while another may: wait_port decides.
    out=$(as_root pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>&1) || say "PostgreSQL $v did not start: $out"
  done
  wait_port 5432 PostgreSQL 60
fi

if ! answers 5672; then
  if ! command -v rabbitmq-server >/dev/null; then apt_install rabbitmq-server; fi
  say "starting RabbitMQ"
  # A node that runs with its application stopped (as an interrupted chaos test leaves it) needs start_app; a
  # node that is not running needs the server started.
  if as_root rabbitmqctl -q ping >/dev/null 2>&1; then
    out=$(as_root rabbitmqctl -q start_app 2>&1) || say "rabbitmqctl start_app failed: $out"
  else
    out=$(as_root rabbitmq-server -detached 2>&1) || say "rabbitmq-server -detached failed: $out"
  fi
  wait_port 5672 RabbitMQ 120
fi

if [ -z "${SCENEQUEUE_DATABASE_URL:-}" ]; then
  command -v psql >/dev/null || apt_install postgresql-client
  sql() { as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 "$@"; }
  sql -c "DO \$\$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scenequeue') THEN
              CREATE ROLE scenequeue LOGIN PASSWORD 'scenequeue' CREATEDB;
            END IF;
          END \$\$;" || die "cannot create the scenequeue role in PostgreSQL"
  db=$(sql -tA -c "SELECT 1 FROM pg_database WHERE datname = 'scenequeue'") \
    || die "cannot query PostgreSQL for the scenequeue database"
  if [ -z "$db" ]; then
    sql -c "CREATE DATABASE scenequeue OWNER scenequeue" || die "cannot create the scenequeue database"
  fi
fi
say "PostgreSQL and RabbitMQ answer on 127.0.0.1"
