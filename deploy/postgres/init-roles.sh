#!/bin/sh
# First start of the postgres container (/docker-entrypoint-initdb.d): deploy/postgres/roles.sql, with the two
# roles' passwords read from Docker secrets inside psql (never on a command line). docker/compose.yml mounts
# roles.sql at /scenequeue/roles.sql.
set -eu
{
  echo '\set owner_password `cat /run/secrets/db_owner_password`'
  echo '\set app_password `cat /run/secrets/db_app_password`'
  cat /scenequeue/roles.sql
} | psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
      -v db=scenequeue -v owner=scenequeue_owner -v app=scenequeue_app
