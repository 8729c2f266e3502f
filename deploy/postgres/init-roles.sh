#!/bin/sh
# First start of the postgres container (/docker-entrypoint-initdb.d): deploy/postgres/roles.sql, with the two
# roles' passwords read from Docker secrets inside psql (never on a command line). docker/compose.yml mounts
# roles.sql at /scenequeue/roles.sql.
set -eu
for f in /run/secrets/db_owner_password /run/secrets/db_app_password; do
  [ -r "$f" ] && [ -s "$f" ] || { echo "cannot read $f (or it is empty): no role is created" >&2; exit 1; }
done
{
  printf '%s\n' '\set owner_password `cat /run/secrets/db_owner_password`'
  printf '%s\n' '\set app_password `cat /run/secrets/db_app_password`'
  cat /scenequeue/roles.sql
} | psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
      -v db=scenequeue -v owner=scenequeue_owner -v app=scenequeue_app
