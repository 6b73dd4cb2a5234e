#!/bin/sh
# Stand-in for certbot/certbot (no certificate authority is reachable from the engine's namespace):
# `certonly --webroot -w DIR -d DOMAIN [--keep-until-expiring] ...` does what certbot's webroot mode does on
# the node's side, with a local CA in place of the ACME server: it writes an HTTP-01 token into DIR (no CA
# fetches it: the engine test fetches one through the gateway itself), and then a certificate for DOMAIN
# signed by that CA, in certbot's layout (archive/DOMAIN/*N.pem, live/DOMAIN/* symlinks to them). Each is
# valid DAYS days, fewer than certbot's 30-day renewal window, so every renew issues a new one.
set -eu
DAYS=20
state=/etc/letsencrypt
if [ "${1:-}" != certonly ]; then
    echo "certbot stand-in: only certonly is imitated (got: $*)" >&2
    exit 2
fi
shift
webroot="" domain="" keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --webroot|--agree-tos|--non-interactive|--staging) ;;
        -w|--webroot-path) webroot=$2; shift ;;
        -d|--domains) domain=$2; shift ;;
        --email) shift ;;
        --keep-until-expiring) keep=1 ;;
        *) echo "certbot stand-in: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$webroot" ] || [ -z "$domain" ]; then
    echo "certbot stand-in: --webroot -w DIR and -d DOMAIN are required" >&2
    exit 2
fi
live="$state/live/$domain" archive="$state/archive/$domain"
if [ "$keep" -eq 1 ] && [ -s "$live/cert.pem" ] && openssl x509 -checkend $((30 * 86400)) -noout -in "$live/cert.pem"; then
    echo "Certificate not yet due for renewal; no action taken."
    exit 0
fi
token=$(openssl rand -hex 16)
mkdir -p "$webroot/.well-known/acme-challenge" "$archive" "$live" "$state/ca"
printf '%s.stand-in-account\n' "$token" > "$webroot/.well-known/acme-challenge/$token"
if [ ! -s "$state/ca/ca.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=nodegen engine test CA" \
        -keyout "$state/ca/ca.key" -out "$state/ca/ca.pem" 2>/dev/null
fi
n=1
while [ -e "$archive/cert$n.pem" ]; do n=$((n + 1)); done
openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$domain" -keyout "$archive/privkey$n.pem" \
    -out "$archive/req$n.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$domain" > "$archive/ext$n.cnf"
openssl x509 -req -in "$archive/req$n.csr" -CA "$state/ca/ca.pem" -CAkey "$state/ca/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -days "$DAYS" -extfile "$archive/ext$n.cnf" -out "$archive/cert$n.pem" 2>/dev/null
cp "$state/ca/ca.pem" "$archive/chain$n.pem"
cat "$archive/cert$n.pem" "$archive/chain$n.pem" > "$archive/fullchain$n.pem"
rm -f "$archive/req$n.csr" "$archive/ext$n.cnf"
for kind in cert chain fullchain privkey; do
    ln -sfn "../../archive/$domain/$kind$n.pem" "$live/$kind.pem"
done
echo "Successfully received certificate (stand-in CA): $live/fullchain.pem"
