-- scenequeue's database and its two roles. Run once, as a superuser (or a role with CREATEROLE and CREATEDB):
--
--   psql -v ON_ERROR_STOP=1 -v db=scenequeue -v owner=scenequeue_owner -v app=scenequeue_app \
--        -v owner_password="$(cat owner.pw)" -v app_password="$(cat app.pw)" -f deploy/postgres/roles.sql
--
-- owner: owns the database and its schema, and is the only role that runs `scenequeue migrate`.
-- app:   what the scheduler, the workers, `submit`, `status` and the dashboard connect as: it reads and writes
--        rows, and can create, alter or drop nothing. Every table and sequence the owner's migrations create
--        later is granted to it by the default privileges below, so upgrades need no new grants.
-- Connecting as app while a migration is pending fails ("permission denied for schema public"): run
-- `scenequeue migrate` as owner first (docs/DEPLOYING.md, "Upgrading").

CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
CREATE DATABASE :"db" OWNER :"owner";

\connect :"db"
ALTER SCHEMA public OWNER TO :"owner";
-- Only the owner creates in the schema (Postgres 15 already revokes it from PUBLIC; older versions do not).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app";
GRANT USAGE ON SCHEMA public TO :"app";

-- Tables and sequences the owner creates from now on (every migration).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app";
-- And those that exist already (a database migrated before its roles were split this way).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"app";
