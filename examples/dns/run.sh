#!/usr/bin/env bash
# Cilium's DNS demo with local names: dnsmasq as kube-dns, two web servers
# as GitHub, Portcullis in front. Needs dnsmasq, dig, curl, python3
# (scripts/install-peers.sh) and a built portcullis.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
bin="${PORTCULLIS_BIN:-$root/target/release/portcullis}"
[ -x "$bin" ] || (cd "$root" && cargo build --release -p portcullis)
work="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --listen-address=127.0.0.91 --port=5353 --local-ttl=30 \
  --pid-file="$work/dnsmasq.pid" --local=/github.com/ $( [ "$(id -u)" = 0 ] && echo --user=root ) \
  --host-record=api.github.com,127.0.0.81 --host-record=support.github.com,127.0.0.82 \
  2>"$work/dnsmasq.log" & pids+=($!)
for ip in 127.0.0.81 127.0.0.82; do
  python3 -m http.server 8080 --bind "$ip" --directory "$work" >/dev/null 2>&1 & pids+=($!)
done
for ip in 127.0.0.81 127.0.0.82; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/$ip/8080") 2>/dev/null && break; sleep 0.1; done
done
cp "$here/portcullis.yaml" "$here/policy.yaml" "$work/"
"$bin" run --config "$work/portcullis.yaml" >"$work/access.log" 2>"$work/portcullis.log" & pids+=($!)
for _ in $(seq 100); do curl -fs http://127.0.0.1:9901/ready >/dev/null && break; sleep 0.1; done

show() { echo "\$ $*"; "$@" || true; echo; }
# 000: the connection was reset, as a denied connection is.
code() { curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.93 -m 3 "$1" || true; }
echo "# before any lookup, api.github.com's address is just the world: denied"
echo "\$ curl --interface 127.0.0.93 http://127.0.0.92:8081/  ->  $(code http://127.0.0.92:8081/)"
show dig +short @127.0.0.92 -p 5353 -b 127.0.0.93 api.github.com
echo "# the answer is in the FQDN cache: allowed"
echo "\$ curl --interface 127.0.0.93 http://127.0.0.92:8081/  ->  $(code http://127.0.0.92:8081/)"
show dig +short @127.0.0.92 -p 5353 -b 127.0.0.93 support.github.com
echo "# resolvable, but no toFQDNs selects support.github.com: denied"
echo "\$ curl --interface 127.0.0.93 http://127.0.0.92:8082/  ->  $(code http://127.0.0.92:8082/)"
show "$bin" fqdn list
