#!/bin/sh
# The official Synapse image's start.py, for the one mode the fleet uses: run the server from an existing
# configuration; without one it refuses to start (it no longer generates one from the environment).
set -e
config="${SYNAPSE_CONFIG_PATH:-/data/homeserver.yaml}"
if [ ! -f "$config" ]; then
    echo "Config file '$config' does not exist." >&2
    echo "The synapse docker image no longer supports generating a config file on-the-fly based on environment variables." >&2
    exit 1
fi
# The image's documented UID and GID variables (start.py reads the same names).
# shellcheck disable=SC3028
uid="${UID:-991}" gid="${GID:-991}"
if [ "$(id -u)" = 0 ]; then
    chown -R "$uid:$gid" /data
    exec setpriv --reuid="$uid" --regid="$gid" --clear-groups \
        /opt/synapse/bin/python -m synapse.app.homeserver --config-path "$config" "$@"
fi
exec /opt/synapse/bin/python -m synapse.app.homeserver --config-path "$config" "$@"
