# PostgreSQL 15 with pg_auto_failover, from Debian's packages: the monitor and the two data nodes of
# docker/compose.yml's `cluster` profile (docs/SCALING.md). The entrypoint says which role a container plays.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 postgresql-15-auto-failover pg-auto-failover-cli \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc /usr/share/man \
    && install -d -o postgres -g postgres /var/lib/postgresql /var/run/postgresql
COPY docker/pg-auto-failover-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    XDG_CONFIG_HOME=/var/lib/postgresql/.config \
    XDG_DATA_HOME=/var/lib/postgresql/.local
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
