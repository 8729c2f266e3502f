# A small PostgreSQL 15 image from Debian's packages, for scripts/compose-check.sh where no image registry is
# reachable. It honours the part of the official postgres image's interface that docker/compose.yml uses:
# POSTGRES_USER, POSTGRES_PASSWORD_FILE, PGDATA and the scripts of /docker-entrypoint-initdb.d on first start.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc /usr/share/man
COPY docker/check/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
