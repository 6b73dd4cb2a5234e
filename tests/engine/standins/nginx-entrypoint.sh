#!/bin/sh
# The official nginx image: executable scripts in /docker-entrypoint.d run before nginx starts.
set -e
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
    for f in /docker-entrypoint.d/*.sh; do
        [ -x "$f" ] && { echo "$0: running $f"; "$f"; }
    done
fi
exec "$@"
