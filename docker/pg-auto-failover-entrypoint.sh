#!/bin/sh
# `docker-entrypoint.sh monitor` or `docker-entrypoint.sh node`: creates the pg_auto_failover monitor or a data
# node on first start (its data and state live in the volume at /var/lib/postgresql), then runs it. A data node that is the primary
# applies deploy/postgres/roles.sql once (mounted at /scenequeue/roles.sql, with the passwords from Docker
# secrets), over the local socket: no superuser is reachable from the network.
#
set -eu
role=${1:?monitor or node}
host=$(hostname)
# pg_auto_failover's users are trusted from this network (pg_autoctl runs with --skip-pg-hba); everyone else
# needs a password.
hba() {
  grep -q "scenequeue clients" "$PGDATA/pg_hba.conf" 2>/dev/null && return 0
  printf '%s\n' "# pg_auto_failover" \
    "host pg_auto_failover autoctl_node samenet trust" \
    "host all pgautofailover_monitor samenet trust" \
    "host replication pgautofailover_replicator samenet trust" \
    "host postgres pgautofailover_replicator samenet trust" \
    "# scenequeue clients" "host all all samenet scram-sha-256" >> "$PGDATA/pg_hba.conf"
}

roles() {
  for _ in $(seq 600); do
    [ "$(psql -X -Atq -h /var/run/postgresql -d postgres -c 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = t ] && break
    sleep 1
  done
  [ "$(psql -X -Atq -h /var/run/postgresql -d postgres -c "SELECT count(*) FROM pg_roles WHERE rolname = 'scenequeue_owner'" 2>/dev/null)" = 0 ] || return 0
  [ "$(psql -X -Atq -h /var/run/postgresql -d postgres -c 'SELECT NOT pg_is_in_recovery()')" = t ] || return 0
  {
    printf '%s\n' '\set owner_password `cat /run/secrets/db_owner_password`'
    printf '%s\n' '\set app_password `cat /run/secrets/db_app_password`'
    cat /scenequeue/roles.sql
  } | psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -d postgres \
        -v db=scenequeue -v owner=scenequeue_owner -v app=scenequeue_app
  echo "scenequeue's database and roles created"
}

# A container started again keeps its /tmp, where pg_autoctl left the pid file of its previous life (PID 1 then,
# and PID 1 now): it would refuse to start, as if it were running already.
rm -rf /tmp/pg_autoctl

case $role in
  monitor)
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
      pg_autoctl create monitor --pgdata "$PGDATA" --pgport 5432 --hostname "$host" --ssl-self-signed \
        --skip-pg-hba
      hba
      # Failover in about 25 s rather than 50 (measured: docs/BENCHMARKS.md); the demotion timeout must stay
      # longer than the data nodes' network_partition_timeout (10 s, below).
      printf '%s\n' "pgautofailover.health_check_period = 2000" "pgautofailover.health_check_timeout = 2000" \
        "pgautofailover.health_check_retry_delay = 1000" "pgautofailover.node_considered_unhealthy_timeout = 10000" \
        "pgautofailover.primary_demote_timeout = 15000" >> "$PGDATA/postgresql.conf"
    fi
    exec pg_autoctl run --pgdata "$PGDATA"
    ;;
  node)
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
      pg_autoctl create postgres --pgdata "$PGDATA" --pgport 5432 --hostname "$host" --name "$host" \
        --monitor "postgres://autoctl_node@${MONITOR_HOST:-pg-monitor}:5432/pg_auto_failover?sslmode=require" \
        --ssl-self-signed --skip-pg-hba
      # A primary's failover timeouts: see scripts/cluster.sh and docs/RUNBOOK.md.
      pg_autoctl config set --pgdata "$PGDATA" timeout.network_partition_timeout 10
      hba
    fi
    roles &
    exec pg_autoctl run --pgdata "$PGDATA"
    ;;
  *) echo "unknown role $role (monitor or node)" >&2; exit 2 ;;
esac
