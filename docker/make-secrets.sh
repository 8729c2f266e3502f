#!/usr/bin/env bash
# Writes the secrets docker/compose.yml reads, with fresh random passwords, into DIR (default docker/secrets):
#   postgres_password        the PostgreSQL superuser's (postgres container only)
#   db_owner_password        scenequeue_owner's: owns the schema, runs migrations (deploy/postgres/roles.sql)
#   db_app_password          scenequeue_app's: data rights only (scheduler, workers, submissions)
#   rabbitmq.env             RABBITMQ_DEFAULT_USER and RABBITMQ_DEFAULT_PASS (an env file for the broker)
#   scenequeue-owner.toml    configuration file of `scenequeue migrate` (its URLs hold the owner's password)
#   scenequeue-app.toml      configuration file of the scheduler, the workers and submissions
#   rabbitmq-cluster.env     the Erlang cookie the three nodes of the `cluster` profile share
#   scenequeue-*-cluster.toml the same two configuration files for the `cluster` profile: every broker node and
#                            both PostgreSQL hosts
# Files already there are kept, so running it again changes nothing. Add `?sslmode=verify-full` and amqps:// to
# the URLs in the .toml files when the services offer TLS (docs/DEPLOYING.md).
set -euo pipefail
dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
chmod 700 "$dir"
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# put NAME CONTENT: writes DIR/NAME unless it exists. Readable by the containers' users (the directory is not).
put() {
  [ -e "$dir/$1" ] && return 0
  (umask 022; printf '%s\n' "$2" > "$dir/$1")
}
put postgres_password "$(rand)"
put db_owner_password "$(rand)"
put db_app_password "$(rand)"
put rabbitmq.env "RABBITMQ_DEFAULT_USER=scenequeue
RABBITMQ_DEFAULT_PASS=$(rand)"
mq_pass=$(sed -n 's/^RABBITMQ_DEFAULT_PASS=//p' "$dir/rabbitmq.env")
for role in owner app; do
  put "scenequeue-$role.toml" "# scenequeue configuration file (SCENEQUEUE_CONFIG) of the $role role: see docs/DEPLOYING.md
database_url = \"postgres://scenequeue_$role:$(cat "$dir/db_${role}_password")@postgres:5432/scenequeue\"
amqp_url = \"amqp://scenequeue:$mq_pass@rabbitmq:5672/%2f\""
  nodes=$(for n in 1 2 3; do printf 'amqp://scenequeue:%s@rabbitmq-%s:5672/%%2f,' "$mq_pass" "$n"; done)
  put "scenequeue-$role-cluster.toml" "# scenequeue configuration file (SCENEQUEUE_CONFIG) of the $role role on the cluster profile
database_url = \"postgres://scenequeue_$role:$(cat "$dir/db_${role}_password")@pg-1:5432,pg-2:5432/scenequeue?target_session_attrs=read-write\"
amqp_url = \"${nodes%,}\"
amqp_cluster = \"scenequeue\""
done
# The cookie on the command line of the broker's Erlang VM and its tools (the nodes authenticate each other with it).
cookie=$(rand)
put rabbitmq-cluster.env "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-setcookie $cookie
RABBITMQ_CTL_ERL_ARGS=-setcookie $cookie"
echo "secrets in $dir: $(ls "$dir" | tr '\n' ' ')"
