# A small RabbitMQ image from Debian's packages (bookworm: 3.10), for scripts/compose-check.sh where no image
# registry is reachable. It honours RABBITMQ_DEFAULT_USER and RABBITMQ_DEFAULT_PASS like the official image.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc /usr/share/man
COPY docker/check/rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
EXPOSE 5672
ENTRYPOINT ["docker-entrypoint.sh"]
