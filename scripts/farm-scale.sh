#!/usr/bin/env bash
# The farm-scale curve (docs/SCALING.md): `scenequeue-bench farm` with 10, 100 and 1,000 simulated workers, every
# worker's database connections through a PgBouncer in transaction mode started here with the project's
# configuration (deploy/pgbouncer/pgbouncer.ini), the benchmark's own reads on a direct connection.
#
# Usage: scripts/farm-scale.sh [WORKERS...]      (default: 10 100 1000)
# Environment: JOBS_PER_WORKER (20, at least 2,000 jobs in all), SCENES_PER_JOB (30), POOL_SIZE (8: server
# connections), PREFETCH (1), STATEMENTS (1: also count the database statements, which costs the workers some
# CPU), SCENEQUEUE_DATABASE_URL (the direct URL; default the scenequeue database).
#
# RabbitMQ needs a file descriptor per connection and each worker holds one: a node started with the usual
# limit of 1,024 descriptors takes about 830 connections, so 1,000 workers need it raised (the script says how).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_cargo
scripts/services.sh

workers=("$@")
[ ${#workers[@]} -gt 0 ] || workers=(10 100 1000)
direct=${SCENEQUEUE_DATABASE_URL:-postgres://scenequeue:scenequeue@127.0.0.1:5432/scenequeue}
pool_size=${POOL_SIZE:-8}

most=0
for n in "${workers[@]}"; do [ "$n" -gt "$most" ] && most=$n; done
sockets=$(as_root rabbitmqctl -q status 2>/dev/null | sed -n '/^Sockets:/s/.*limit: \([0-9]*\).*/\1/p' | head -n1)
if [ -n "$sockets" ] && [ "$sockets" -lt $((most + 50)) ]; then
  die "RabbitMQ takes at most $sockets connections and $most workers need $((most + 50)); restart it with more file
descriptors (LimitNOFILE in its systemd unit; by hand: rabbitmqctl stop, then as the rabbitmq user
'ulimit -n 20000; rabbitmq-server -detached', since su and sudo reset the limit)"
fi

pgbouncer=$(scripts/pgbouncer.sh)
cargo build --release --locked -p scenequeue-bench
dir=$(mktemp -d)
chmod 755 "$dir"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

user=$(sed -E 's#^postgres(ql)?://([^:@/]*).*#\2#' <<<"$direct")
password=$(sed -nE 's#^postgres(ql)?://[^:@/]*:([^@]*)@.*#\2#p' <<<"$direct")
hostport=$(sed -E 's#^postgres(ql)?://([^@]*@)?([^/?]*).*#\3#' <<<"$direct")
host=${hostport%:*}
port=${hostport##*:}
[ "$port" != "$hostport" ] || port=5432
listen=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '"%s" "%s"\n"sq_farm_admin" ""\n' "$user" "$password" > "$dir/users.txt"
sed -e "s/@PG_HOST@/$host/; s/@PG_PORT@/$port/; s/@LISTEN_ADDR@/127.0.0.1/; s/@LISTEN_PORT@/$listen/" \
  -e "s/@POOL_SIZE@/$pool_size/g; s/@MAX_CLIENTS@/$((most * 3 + 100))/; s/@AUTH_TYPE@/trust/" \
  -e "s#@AUTH_FILE@#$dir/users.txt#; s/@ADMIN_USER@/sq_farm_admin/" \
  deploy/pgbouncer/pgbouncer.ini > "$dir/pgbouncer.ini"
chmod 644 "$dir"/*
run_as=()
[ "$(id -u)" -eq 0 ] && run_as=(-u nobody)
# The simulated workers' connections and PgBouncer's clients take a descriptor each.
ulimit -n "$(ulimit -Hn)"
"$pgbouncer" "${run_as[@]}" "$dir/pgbouncer.ini" 2> "$dir/pgbouncer.log" &
pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null && break; sleep 0.2; done
(exec 3<>"/dev/tcp/127.0.0.1/$listen") 2>/dev/null || die "PgBouncer did not start: $(tail -n 3 "$dir/pgbouncer.log")"
pooled=$(sed -E "s#@$hostport/#@127.0.0.1:$listen/#" <<<"$direct")

say "PgBouncer $("$pgbouncer" --version | head -n1) on 127.0.0.1:$listen, $pool_size server connections"
for n in "${workers[@]}"; do
  jobs=$((n * ${JOBS_PER_WORKER:-20}))
  [ "$jobs" -ge 2000 ] || jobs=2000
  say "$n workers, $jobs jobs of ${SCENES_PER_JOB:-30} scenes"
  target/release/scenequeue-bench farm --workers "$n" --jobs "$jobs" --scenes-per-job "${SCENES_PER_JOB:-30}" \
    --db-connections 2 --prefetch "${PREFETCH:-1}" --database-url "$pooled" --admin-url "$direct" \
    ${STATEMENTS:+--statements} \
    2> "$dir/farm-$n.log" || { tail -n 5 "$dir/farm-$n.log" >&2; die "the farm of $n workers failed"; }
done
