#!/bin/sh
# The official nats image: flags go to nats-server; its default configuration listens on 4222 with
# monitoring on 8222.
set -e
case "$1" in -*) set -- nats-server "$@" ;; esac
exec "$@"
