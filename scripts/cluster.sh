#!/usr/bin/env bash
# A three-node RabbitMQ cluster and a PostgreSQL primary with a synchronous standby under pg_auto_failover, on
# one machine, each node in a network namespace of its own on a private bridge, so that a partition is a real
# cut of the network and a killed node is a killed process. docs/SCALING.md says what it is for and what was
# measured on it.
#
#   scripts/cluster.sh start            # install what is missing, start every node, print the client settings
#   scripts/cluster.sh env              # the client settings (SCENEQUEUE_AMQP_URL, SCENEQUEUE_DATABASE_URL, ...)
#   scripts/cluster.sh status           # the broker cluster and the failover formation as their tools see them
#   scripts/cluster.sh stop             # stop every node and remove the namespaces (the data stays)
#   scripts/cluster.sh destroy          # stop, then remove the data too
#
# Faults, for drills and the chaos suite (N is 1, 2 or 3 for brokers; 1 or 2 for PostgreSQL nodes):
#   kill-mq N | start-mq N|all          # SIGKILL a broker node / start it (or all) again; it rejoins the cluster
#   cut-mq N | heal-mq N                # partition a broker node from the other two / join it again
#   kill-pg N | start-pg N              # SIGKILL a PostgreSQL node and its keeper / start it again
#   mq-leader QUEUE                     # the broker node (1-3) that leads a quorum queue
#   mq-running N                        # how many nodes broker node N sees running
#   pg-primary                          # the PostgreSQL node (1-2) that is primary now
#   drill-pg                            # kill the primary; time until the standby takes writes; old one back
#
# Settings (environment): SCENEQUEUE_CLUSTER_DIR (data and logs, default /var/tmp/scenequeue-cluster),
# SCENEQUEUE_CLUSTER_TAG (prefix of the namespaces and links, at most 6 characters, default sqc),
# SCENEQUEUE_CLUSTER_NET (the /24 the nodes live in, as its first three octets, default 10.215.0).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DIR=${SCENEQUEUE_CLUSTER_DIR:-/var/tmp/scenequeue-cluster}
TAG=${SCENEQUEUE_CLUSTER_TAG:-sqc}
NET=${SCENEQUEUE_CLUSTER_NET:-10.215.0}
[ ${#TAG} -le 6 ] || die "SCENEQUEUE_CLUSTER_TAG must be at most 6 characters (it prefixes link names)"
[[ $NET =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "SCENEQUEUE_CLUSTER_NET must be three octets, like 10.215.0"
BRIDGE=${TAG}br
PG_BIN=/usr/lib/postgresql/15/bin
MONITOR=pgm
# The cluster's name: clients given SCENEQUEUE_AMQP_CLUSTER refuse a node that reports another.
CLUSTER_NAME=scenequeue
COOKIE=scenequeue-cluster-cookie

mq_ip() { echo "$NET.1$1"; }
pg_ip() { case $1 in "$MONITOR") echo "$NET.20" ;; *) echo "$NET.2$1" ;; esac; }
ns() { echo "$TAG-$1"; }
in_ns() { local n; n=$(ns "$1"); shift; ip netns exec "$n" "$@"; }

[ "$(id -u)" -eq 0 ] || die "cluster.sh creates network namespaces: run it as root"

need_packages() {
  command -v ip >/dev/null || apt_install iproute2
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  [ -x "$PG_BIN/pg_ctl" ] || apt_install postgresql-15
  command -v pg_autoctl >/dev/null || apt_install postgresql-15-auto-failover pg-auto-failover-cli
  command -v python3 >/dev/null || apt_install python3
}

# --- network -------------------------------------------------------------------------------------------------

net_up() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  # Where bridged traffic passes through iptables (br_netfilter, as Docker sets it up, with a FORWARD policy of
  # DROP), the nodes could not reach each other: let the bridge's own traffic through.
  if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ] && command -v iptables >/dev/null; then
    iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null \
      || iptables -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
  fi
}

# node_ns NAME IP: a namespace joined to the bridge by a veth pair, with IP on its side.
node_ns() {
  local n link
  n=$(ns "$1") link="$TAG$1"
  ip netns list | grep -qw "$n" && return 0
  ip netns add "$n"
  ip link add "${link}a" type veth peer name "${link}b"
  ip link set "${link}b" netns "$n"
  ip link set "${link}a" master "$BRIDGE" up
  in_ns "$1" ip addr add "$2/24" dev "${link}b"
  in_ns "$1" ip link set "${link}b" up
  in_ns "$1" ip link set lo up
}

net_down() {
  local n
  for n in $(ip netns list | awk '{print $1}' | grep "^$TAG-" || true); do
    ip link del "$TAG${n#"$TAG-"}a" 2>/dev/null || true
    ip netns del "$n"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  if command -v iptables >/dev/null; then
    while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
  fi
}

# --- RabbitMQ ------------------------------------------------------------------------------------------------

mq_env() {
  local n=$1 d="$DIR/mq$1"
  echo "HOME=$d/home RABBITMQ_NODENAME=rabbit@$(mq_ip "$n") RABBITMQ_USE_LONGNAME=true"
  echo "RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf"
  echo "RABBITMQ_MNESIA_BASE=$d/mnesia RABBITMQ_LOG_BASE=$d/log RABBITMQ_PID_FILE=$d/pid"
  echo "RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins ERL_EPMD_ADDRESS=$(mq_ip "$n")"
}

mq_write_config() {
  local n=$1 d="$DIR/mq$1" i
  mkdir -p "$d/home" "$d/mnesia" "$d/log"
  echo "$COOKIE" > "$d/home/.erlang.cookie"
  chmod 400 "$d/home/.erlang.cookie"
  : > "$d/rabbitmq-env.conf"
  echo "[]." > "$d/enabled_plugins"
  {
    echo "cluster_name = $CLUSTER_NAME"
    echo "listeners.tcp.default = 5672"
    echo "loopback_users = none"
    echo "cluster_formation.peer_discovery_backend = classic_config"
    for i in 1 2 3; do echo "cluster_formation.classic_config.nodes.$i = rabbit@$(mq_ip "$i")"; done
    # A node cut off from the majority stops serving clients, which then reconnect to the majority.
    echo "cluster_partition_handling = pause_minority"
    # How soon a silent peer counts as gone (60 s by default): a partition is acted on within about 20 s.
    echo "net_ticktime = 15"
    echo "log.file.level = info"
  } > "$d/rabbitmq.conf"
}

mqctl() {
  local n=$1; shift
  # shellcheck disable=SC2046
  in_ns "mq$n" env $(mq_env "$n") /usr/lib/rabbitmq/bin/rabbitmqctl -q -l -n "rabbit@$(mq_ip "$n")" "$@"
}

mq_start() {
  local n=$1 d="$DIR/mq$1"
  [ -f "$d/rabbitmq.conf" ] || mq_write_config "$n"
  if mqctl "$n" ping >/dev/null 2>&1; then return 0; fi
  # shellcheck disable=SC2046
  in_ns "mq$n" env $(mq_env "$n") setsid /usr/lib/rabbitmq/bin/rabbitmq-server > "$d/log/console.log" 2>&1 < /dev/null &
}

mq_wait() {
  local n=$1 i
  # await_startup refuses at once while the node has not registered with its epmd yet.
  for ((i = 0; i < 120; i++)); do
    mqctl "$n" await_startup --timeout 120 >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "broker node $n did not start; see $DIR/mq$n/log/"
}

mq_kill() {
  local n=$1 d="$DIR/mq$1"
  [ -f "$d/pid" ] || return 0
  kill -9 "$(cat "$d/pid")" 2>/dev/null || true
  rm -f "$d/pid"
}

# cut-mq N: blackhole routes both ways between node N and the other broker nodes. Packets are dropped silently,
# as on a real partition; clients outside still reach every node.
mq_cut() {
  local n=$1 i
  for i in 1 2 3; do
    [ "$i" = "$n" ] && continue
    in_ns "mq$n" ip route replace blackhole "$(mq_ip "$i")/32"
    in_ns "mq$i" ip route replace blackhole "$(mq_ip "$n")/32"
  done
}

mq_heal() {
  local n=$1 i
  for i in 1 2 3; do
    [ "$i" = "$n" ] && continue
    in_ns "mq$n" ip route del blackhole "$(mq_ip "$i")/32" 2>/dev/null || true
    in_ns "mq$i" ip route del blackhole "$(mq_ip "$n")/32" 2>/dev/null || true
  done
}

mq_leader() {
  local q=$1 i leader
  for i in 1 2 3; do
    leader=$(mqctl "$i" list_queues name leader 2>/dev/null | awk -v q="$q" '$1 == q {print $2}') || continue
    [ -n "$leader" ] || continue
    for i in 1 2 3; do [ "$leader" = "rabbit@$(mq_ip "$i")" ] && { echo "$i"; return 0; }; done
  done
  die "no node reports a leader for queue $q"
}

# mq-running N: how many nodes node N sees running in its cluster (0 when it does not answer).
mq_running() {
  mqctl "$1" cluster_status --formatter json 2>/dev/null \
    | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["running_nodes"]))' 2>/dev/null || echo 0
}

# --- PostgreSQL ----------------------------------------------------------------------------------------------

autoctl() {
  local node=$1 run="$DIR/pg/xdg/run/$1"; shift
  # The namespaces share the file system: each node's keeper and server see a directory of their own as
  # /var/run/postgresql (where the server puts its socket and where the tools look for it).
  in_ns "$node" unshare -m --propagation private sh -c 'mount --bind "$0" /var/run/postgresql && exec "$@"' "$run" \
    runuser -u postgres -- env XDG_CONFIG_HOME="$DIR/pg/xdg/config" XDG_DATA_HOME="$DIR/pg/xdg/data" \
    XDG_RUNTIME_DIR="$run" PG_CONFIG="$PG_BIN/pg_config" PATH="$PG_BIN:$PATH" pg_autoctl "$@"
}

pg_data() { echo "$DIR/pg/$1"; }
monitor_uri() { echo "postgres://autoctl_node@$(pg_ip "$MONITOR"):5432/pg_auto_failover?sslmode=disable"; }

# pg_run NODE: the node's keeper (which runs and supervises its PostgreSQL), in the background.
pg_run() {
  local node=$1
  mkdir -p "$DIR/pg/xdg/run/$node"
  chown -R postgres: "$DIR/pg/xdg"
  if autoctl "$node" status --pgdata "$(pg_data "$node")" >/dev/null 2>&1; then return 0; fi
  autoctl "$node" run --pgdata "$(pg_data "$node")" >> "$DIR/pg/$node.log" 2>&1 < /dev/null &
}

# pg_wait single|both: until the monitor reports the first node alone, or a primary and a secondary.
pg_wait() {
  local want=$1 i state
  for ((i = 0; i < 180; i++)); do
    state=$(autoctl "$MONITOR" show state --pgdata "$(pg_data "$MONITOR")" 2>/dev/null || true)
    if [ "$want" = single ] && grep -q "| *single *| *single" <<<"$state"; then return 0; fi
    if grep -q "| *primary *| *primary" <<<"$state" && grep -q "| *secondary *| *secondary" <<<"$state"; then
      return 0
    fi
    sleep 1
  done
  echo "$state" >&2
  die "the PostgreSQL formation is not $want after 180 s; see $DIR/pg/*.log"
}

pg_create() {
  local node
  for node in "$MONITOR" 1 2; do mkdir -p "$DIR/pg/xdg/run/$node"; done
  chown -R postgres: "$DIR/pg"
  chmod 755 "$DIR" "$DIR/pg"
  if [ ! -f "$(pg_data "$MONITOR")/PG_VERSION" ]; then
    autoctl "$MONITOR" create monitor --pgdata "$(pg_data "$MONITOR")" --pgport 5432 \
      --hostname "$(pg_ip "$MONITOR")" --auth trust --no-ssl --pgctl "$PG_BIN/pg_ctl" >> "$DIR/pg/$MONITOR.log" 2>&1 \
      || die "pg_autoctl create monitor failed; see $DIR/pg/$MONITOR.log"
    echo "host all all $NET.0/24 trust" >> "$(pg_data "$MONITOR")/pg_hba.conf"
  fi
  pg_run "$MONITOR"
  monitor_timeouts
  for node in 1 2; do
    if [ ! -f "$(pg_data "$node")/PG_VERSION" ] && [ ! -f "$DIR/pg/$node.created" ]; then
      autoctl "$node" create postgres --pgdata "$(pg_data "$node")" --pgport 5432 --hostname "$(pg_ip "$node")" \
        --name "pg$node" --monitor "$(monitor_uri)" --auth trust --no-ssl --dbname scenequeue \
        --pgctl "$PG_BIN/pg_ctl" >> "$DIR/pg/$node.log" 2>&1 || die "pg_autoctl create postgres failed; see $DIR/pg/$node.log"
      touch "$DIR/pg/$node.created"
      # An isolated primary stops taking writes after this long without the monitor and its standby; the
      # monitor's primary_demote_timeout (below) must be longer.
      autoctl "$node" config set --pgdata "$(pg_data "$node")" timeout.network_partition_timeout "$PARTITION_S" >/dev/null
      # Clients reach the nodes from the bridge; a standby copies this file from the primary.
      grep -q "$NET.0/24" "$(pg_data "$node")/pg_hba.conf" || echo "host all all $NET.0/24 trust" >> "$(pg_data "$node")/pg_hba.conf"
    fi
    pg_run "$node"
    if [ "$node" = 1 ] && [ ! -f "$DIR/pg/2.created" ]; then pg_wait single; fi
  done
  pg_wait both
}

# The monitor's failure detection (pg_auto_failover's defaults take about 55 s from a primary's death to a
# writable new primary): a node unheard of for UNHEALTHY_MS and failing its health checks is failed over, and
# the new primary takes writes DEMOTE_MS later, once the old one has surely stopped taking them.
PARTITION_S=${SCENEQUEUE_CLUSTER_PARTITION_S:-10}
UNHEALTHY_MS=${SCENEQUEUE_CLUSTER_UNHEALTHY_MS:-10000}
DEMOTE_MS=${SCENEQUEUE_CLUSTER_DEMOTE_MS:-15000}
monitor_timeouts() {
  local i kv args=()
  for ((i = 0; i < 60; i++)); do
    psql -X -q -h "$(pg_ip "$MONITOR")" -U postgres -d pg_auto_failover -c "SELECT 1" >/dev/null 2>&1 && break
    sleep 1
  done
  for kv in health_check_period=2000 health_check_timeout=2000 health_check_retry_delay=1000 \
    node_considered_unhealthy_timeout="$UNHEALTHY_MS" primary_demote_timeout="$DEMOTE_MS"; do
    args+=(-c "ALTER SYSTEM SET pgautofailover.${kv%%=*} = ${kv#*=}")
  done
  psql -X -q -v ON_ERROR_STOP=1 -h "$(pg_ip "$MONITOR")" -U postgres -d pg_auto_failover "${args[@]}" \
    -c "SELECT pg_reload_conf()" >/dev/null || die "cannot set the monitor's timeouts"
}

pg_kill() {
  local node=$1 pid
  for pid in $(ip netns pids "$(ns "$node")" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  rm -f "$(pg_data "$node")/postmaster.pid"
}

pg_primary() {
  local state
  state=$(autoctl "$MONITOR" show state --pgdata "$(pg_data "$MONITOR")" 2>/dev/null) || die "the monitor does not answer"
  # A new primary reports wait_primary until its standby is back.
  awk -F'|' '$6 ~ /^ *(wait_)?primary *$/ && $7 ~ /^ *(wait_)?primary *$/ {gsub(/ /, "", $1); sub(/^pg/, "", $1); print $1; exit}' <<<"$state"
}

# drill-pg: kills the primary, prints the seconds until the other node takes writes, and brings the old primary
# back as the standby (the monitor's timeouts from the environment are applied first).
pg_drill() {
  monitor_timeouts
  local p o t0 i ro
  elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
  p=$(pg_primary)
  [ -n "$p" ] || die "no primary now"
  o=$((3 - p))
  t0=$(date +%s.%N)
  pg_kill "$p"
  for ((i = 0; i < 600; i++)); do
    ro=$(timeout 2 psql -X -h "$(pg_ip "$o")" -U postgres -d scenequeue -Atc "SHOW transaction_read_only" 2>/dev/null || true)
    [ "$ro" = off ] && break
    sleep 0.2
  done
  [ "$ro" = off ] || die "node $o never took writes"
  echo "primary $p killed: node $o took writes after $(elapsed "$t0") s"
  t0=$(date +%s.%N)
  pg_run "$p"
  pg_wait both
  echo "node $p back as the standby after $(elapsed "$t0") s"
}

# --- commands ------------------------------------------------------------------------------------------------

print_env() {
  echo "SCENEQUEUE_AMQP_URL=amqp://guest:guest@$(mq_ip 1):5672/%2f?heartbeat=10,amqp://guest:guest@$(mq_ip 2):5672/%2f?heartbeat=10,amqp://guest:guest@$(mq_ip 3):5672/%2f?heartbeat=10"
  echo "SCENEQUEUE_AMQP_CLUSTER=$CLUSTER_NAME"
  echo "SCENEQUEUE_DATABASE_URL=postgres://postgres@$(pg_ip 1):5432,$(pg_ip 2):5432/scenequeue?target_session_attrs=read-write"
}

start() {
  need_packages
  mkdir -p "$DIR"
  chmod 755 "$DIR"
  net_up
  local n
  for n in 1 2 3; do node_ns "mq$n" "$(mq_ip "$n")"; done
  for n in "$MONITOR" 1 2; do node_ns "$n" "$(pg_ip "$n")"; done
  if [ -d "$DIR/mq1/mnesia/rabbit@$(mq_ip 1)" ]; then
    # A cluster that ran before: each node waits at boot for the others it knew, so all start at once.
    say "starting the three broker nodes"
    for n in 1 2 3; do mq_start "$n"; done
  else
    say "starting broker node 1, then 2 and 3 (which join it)"
    mq_start 1
    mq_wait 1
    mq_start 2
    mq_start 3
  fi
  for n in 1 2 3; do mq_wait "$n"; done
  say "starting the PostgreSQL monitor, primary and standby"
  pg_create
  say "cluster up; client settings:"
  print_env
}

stop() {
  local n
  for n in 1 2 3; do mq_kill "$n"; done
  for n in "$MONITOR" 1 2; do pg_kill "$n"; done
  # epmd and anything else left in the namespaces
  for n in $(ip netns list | awk '{print $1}' | grep "^$TAG-" || true); do
    for pid in $(ip netns pids "$n"); do kill -9 "$pid" 2>/dev/null || true; done
  done
  net_down
}

status() {
  local n
  mqctl 1 cluster_status 2>/dev/null || mqctl 2 cluster_status || true
  autoctl "$MONITOR" show state --pgdata "$(pg_data "$MONITOR")" || true
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  destroy) stop; rm -rf "$DIR" ;;
  env) print_env ;;
  status) status ;;
  kill-mq) mq_kill "${2:?node}" ;;
  start-mq)
    # After the whole cluster went down, each node waits at boot for the others: start them all, then wait.
    if [ "${2:?node}" = all ]; then nodes="1 2 3"; else nodes=$2; fi
    for n in $nodes; do mq_start "$n"; done
    for n in $nodes; do mq_wait "$n"; done ;;
  cut-mq) mq_cut "${2:?node}" ;;
  heal-mq) mq_heal "${2:?node}" ;;
  mq-leader) mq_leader "${2:?queue}" ;;
  mq-running) mq_running "${2:?node}" ;;
  kill-pg) pg_kill "${2:?node}" ;;
  start-pg) pg_run "${2:?node}"; pg_wait both ;;
  pg-primary) pg_primary ;;
  drill-pg) pg_drill ;;
  *) die "usage: scripts/cluster.sh start|stop|destroy|env|status|kill-mq N|start-mq N|cut-mq N|heal-mq N|mq-leader QUEUE|mq-running N|kill-pg N|start-pg N|pg-primary|drill-pg" ;;
esac
