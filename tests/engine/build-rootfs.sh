#!/usr/bin/env bash
# Build the Debian bookworm root file system the engine tests' stand-in images share, as a tarball.
# Usage: build-rootfs.sh OUT.tar SYNAPSE_VERSION
# Stage 1 (debootstrap minbase) and stage 2 (packages) are separate so a package change keeps stage 1.
set -euo pipefail
out=$1
synapse_version=$2
cache=$(dirname "$out")
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
base="$cache/bookworm-minbase.tar"
work=$(mktemp -d "$cache/work.XXXXXX")
cleanup() {
    for m in proc dev/pts dev; do umount "$work/root/$m" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/root"
if [ ! -s "$base" ]; then
    debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    tar -C "$work/root" -cf "$base.tmp" . && mv "$base.tmp" "$base"
else
    tar -C "$work/root" -xf "$base"
fi
root="$work/root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
packages=(
    ca-certificates curl wget procps iproute2 tini openssl
    python3 python3-venv python3-yaml python3-psycopg2 python3-jinja2
    postgresql-15 postgresql-client-15 redis-server redis-tools nats-server nginx-light
    prometheus prometheus-alertmanager prometheus-node-exporter
    prometheus-postgres-exporter prometheus-redis-exporter prometheus-blackbox-exporter
)
cat >"$root/usr/sbin/policy-rc.d" <<'POLICY'
#!/bin/sh
exit 101
POLICY
chmod +x "$root/usr/sbin/policy-rc.d"
chroot "$root" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends "${packages[@]}" \
    >"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; exit 1; }
# Wheels come from the host's pip (its index and CA settings); the chroot installs them offline.
# Synapse's own releases pin their dependencies in a lock file PyPI does not carry: newer prometheus-client
# (0.22+) and Twisted (25+) break 1.120's imports, so they are held back to the versions of its time.
mkdir "$root/tmp/wheels"
printf '%s\n' 'prometheus-client<0.22' 'twisted<25' >"$work/constraints.txt"
PIP_CONSTRAINT="$work/constraints.txt" python3 -m pip download -q --dest "$root/tmp/wheels" --only-binary=:all: \
    "matrix-synapse==$synapse_version" 2>&1 | grep -v '^WARNING: Location' || true
if ! ls "$root"/tmp/wheels/matrix_synapse-*.whl >/dev/null 2>&1; then  # a later release that needs newer ones
    python3 -m pip download -q --dest "$root/tmp/wheels" --only-binary=:all: "matrix-synapse==$synapse_version" \
        2>&1 | grep -v '^WARNING: Location' || true
fi
ls "$root"/tmp/wheels/matrix_synapse-*.whl >/dev/null
chroot "$root" python3 -m venv --system-site-packages /opt/synapse
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$root" /opt/synapse/bin/pip install -q --no-cache-dir \
    --no-index --find-links /tmp/wheels matrix-synapse
chroot "$root" /opt/synapse/bin/python -c 'import synapse.app.homeserver'
ln -sf /opt/synapse/bin/python "$root/usr/local/bin/python"
rm -rf "$root/tmp/wheels"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root/usr/sbin/policy-rc.d" "$root/etc/resolv.conf"
umount "$root/proc"
: >"$root/etc/resolv.conf"
tar -C "$root" -cf "$out.tmp" . && mv "$out.tmp" "$out"
