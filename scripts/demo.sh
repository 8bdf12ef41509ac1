#!/usr/bin/env bash
# The Cilium "Star Wars" demo, standalone on loopback (examples/starwars/).
#
#   bash scripts/demo.sh            # build, start, run the demo, keep running until Ctrl-C
#   bash scripts/demo.sh --once     # ... and stop after the demo (exit 1 if any result is off)
#   bash scripts/demo.sh --no-build # use an existing binary (also implied by PORTCULLIS_BIN=...)
#
# Who is who (by source address, see examples/starwars/portcullis.yaml):
#   deathstar   127.0.0.10:80  (examples/starwars/deathstar.py), behind Portcullis on 127.0.0.1:10080
#   tiefighter  127.0.0.2      org=empire   -> L3 allowed, L7: only POST /v1/request-landing
#   xwing       127.0.0.3      org=alliance -> not allowed at L3: the connection is reset
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

once=0 build=1
for arg in "$@"; do
  case $arg in
    --once) once=1 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

config=examples/starwars/portcullis.yaml
admin=127.0.0.1:9901
proxy=127.0.0.1:10080
host_header='Host: deathstar.default.svc.cluster.local'

if [[ -t 1 ]]; then say() { printf '\033[1m%s\033[0m\n' "$*"; }; else say() { printf '%s\n' "$*"; }; fi
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

if [[ -n ${PORTCULLIS_BIN:-} ]]; then
  bin=$PORTCULLIS_BIN
  build=0
else
  bin=$repo/target/release/portcullis
fi
if ((build)); then
  if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  fi
  say "==> cargo build --release -p portcullis"
  cargo build --release -p portcullis
fi
[[ -x $bin ]] || die "no Portcullis binary at $bin (build it, or set PORTCULLIS_BIN)"
command -v curl >/dev/null 2>&1 || die "curl is missing (run scripts/install-peers.sh)"

for addr in 127.0.0.10:80 "$proxy" "$admin"; do
  if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
    die "$addr is already in use: stop whatever listens there (an earlier demo?) and retry"
  fi
done

work=$(mktemp -d /tmp/portcullis-demo.XXXXXX)
pids=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'echo; say "stopping"; exit 0' INT TERM

show_log() { echo "--- $1 (last lines) ---" >&2; tail -n 20 "$1" >&2 || true; }

say "==> starting deathstar on 127.0.0.10:80 (log: $work/deathstar.log)"
python3 examples/starwars/deathstar.py >"$work/deathstar.log" 2>&1 &
deathstar_pid=$!
pids+=("$deathstar_pid")
for ((i = 0; i < 100; i++)); do
  grep -q '^ready' "$work/deathstar.log" && break
  kill -0 "$deathstar_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^ready' "$work/deathstar.log" || { show_log "$work/deathstar.log"; die "deathstar did not start"; }

say "==> starting: $bin run --config $config (log: $work/portcullis.log)"
"$bin" run --config "$config" >"$work/portcullis.log" 2>&1 &
portcullis_pid=$!
pids+=("$portcullis_pid")

for ((i = 0; i < 150; i++)); do
  curl -sf -o /dev/null "http://$admin/ready" && break
  kill -0 "$portcullis_pid" 2>/dev/null || { show_log "$work/portcullis.log"; die "portcullis exited during start-up"; }
  sleep 0.2
done
curl -sf -o /dev/null "http://$admin/ready" || { show_log "$work/portcullis.log"; die "portcullis not ready after 30s ($admin/ready)"; }
curl -sf -o /dev/null -XPOST http://127.0.0.10/v1/request-landing || { show_log "$work/deathstar.log"; die "deathstar does not answer on 127.0.0.10:80"; }
say "==> ready: http://$admin/ready"

failures=0
# Print a command so that it can be pasted back into a shell.
show_cmd() {
  local out=() arg
  for arg in "$@"; do
    if [[ $arg =~ ^[-A-Za-z0-9_./:=@]+$ ]]; then out+=("$arg"); else out+=("'$arg'"); fi
  done
  echo "\$ ${out[*]}"
}
# ship NAME SOURCE_IP METHOD PATH EXPECT  (EXPECT: "200 text" | "403 text" | "reset")
ship() {
  local name=$1 src=$2 method=$3 path=$4 expect=$5 status rc body err verdict=
  local cmd=(curl -s -X"$method" --interface "$src" -H "$host_header" "http://$proxy$path")
  echo
  say "# $name ($src): $method $path"
  show_cmd "${cmd[@]}"
  rc=0
  status=$("${cmd[@]}" -S --max-time 5 -o "$work/body" -w '%{http_code}' 2>"$work/err") || rc=$?
  body=$(cat "$work/body" 2>/dev/null || true)
  err=$(cat "$work/err")
  printf 'curl exit %s, HTTP status %s\n' "$rc" "${status:-000}"
  [[ -n $err ]] && printf '%s\n' "$err"
  [[ -n $body ]] && printf '%s\n' "$body"
  case $expect in
    # Usually exit 56 (reset while reading the reply); 55 when the reset wins the
    # race against curl's send, 7 ("Couldn't connect") when it arrives even before
    # curl checks its non-blocking connect. The listener is known to be up here.
    reset) [[ $rc =~ ^(7|55|56)$ ]] && verdict=ok ;;
    *) [[ $rc == 0 && $status == "${expect%% *}" && $body == *"${expect#* }"* ]] && verdict=ok ;;
  esac
  if [[ $verdict == ok ]]; then
    echo "=> as expected ($expect)"
  else
    echo "=> UNEXPECTED: wanted $expect"
    failures=$((failures + 1))
  fi
  rm -f "$work/body" "$work/err"
}

ship tiefighter 127.0.0.2 POST /v1/request-landing "200 Ship landed"
ship tiefighter 127.0.0.2 PUT /v1/exhaust-port "403 Access denied"
ship xwing 127.0.0.3 POST /v1/request-landing reset
echo

# Portcullis writes its access log (JSON lines) to stdout. The writer drains
# its queue every 20 ms, so wait (up to 2 s) for the xwing's refused
# connection, the last of the three events, before showing them.
for _ in $(seq 100); do
  grep -q '"kind":"connection"' "$work/portcullis.log" && break
  sleep 0.02
done
if grep -q '^{' "$work/portcullis.log"; then
  say "==> access log (JSON lines; Hubble does not receive these yet):"
  grep '^{' "$work/portcullis.log" || true
  echo
fi
if ((failures)); then
  say "==> $failures result(s) differ from Cilium's demo"
  show_log "$work/portcullis.log"
else
  say "==> all three results match Cilium's demo"
fi
if ((once)); then
  ((failures)) && die "logs kept in $work"
  rm -rf "$work"
  exit 0
fi

cat <<INFO

Portcullis is running (pid $portcullis_pid); deathstar too. Try:
  curl -s -XPOST --interface 127.0.0.2 -H '$host_header' http://$proxy/v1/request-landing
  curl -s -XPUT  --interface 127.0.0.2 -H '$host_header' http://$proxy/v1/exhaust-port
  curl -s -XPOST --interface 127.0.0.3 -H '$host_header' http://$proxy/v1/request-landing
  curl -s http://$admin/config_dump
  curl -s http://$admin/metrics
Logs: $work/portcullis.log $work/deathstar.log
Press Ctrl-C to stop.
INFO
wait "$portcullis_pid" || true
say "portcullis exited"; show_log "$work/portcullis.log"
exit 1
