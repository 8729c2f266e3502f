#!/bin/sh
# Writes the default user from the environment into rabbitmq.conf (not onto a command line), then starts the node.
set -eu
: "${RABBITMQ_DEFAULT_USER:?RABBITMQ_DEFAULT_USER is required}"
: "${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is required}"
umask 077
cat > /etc/rabbitmq/rabbitmq.conf <<CONF
listeners.tcp.default = 5672
loopback_users = none
default_user = $RABBITMQ_DEFAULT_USER
default_pass = $RABBITMQ_DEFAULT_PASS
CONF
chown rabbitmq:rabbitmq /etc/rabbitmq/rabbitmq.conf
unset RABBITMQ_DEFAULT_PASS
exec rabbitmq-server
