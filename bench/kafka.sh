#!/usr/bin/env bash
# Kafka benchmark: produce and consume throughput and produce latency, direct
# to a tansu broker, through Portcullis enforcing a topic policy (Kafka
# parsing on), and through haproxy in TCP mode (a plain relay: the ceiling for
# any proxy), all on loopback in one run. Each target gets a fresh broker that
# advertises the target's address, so every client connection takes that path.
# kcat (librdkafka 2.16) is the load generator; latency comes from python
# confluent-kafka sending one message at a time. See bench/README.md.
#
#   bash bench/kafka.sh
#   MESSAGES=500000 SIZE=1024 TARGETS="direct portcullis" bash bench/kafka.sh
#   ROUNDS=3 MESSAGES=1000000 CONSUME=0 bash bench/kafka.sh
#   TARGETS="direct portcullis splice haproxy" bash bench/kafka.sh   # also kafka.spliceMinBytes on
BENCH=bench
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MESSAGES=${MESSAGES:-400000}      # records per throughput run
SIZE=${SIZE:-1024}                # bytes per record
LATENCY_COUNT=${LATENCY_COUNT:-2000}
ROUNDS=${ROUNDS:-1}               # the targets alternate this many times; medians are reported
CONSUME=${CONSUME:-1}             # 0: produce and latency only (consume is tansu-bound, ~20 s a run)
TARGETS=${TARGETS:-"direct portcullis haproxy"}
TANSU_BIN=${TANSU_BIN:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}
PORT_BASE=${PORT_BASE:-29092}
BROKER_IP=127.0.0.42

need_whole MESSAGES SIZE LATENCY_COUNT ROUNDS CONSUME PORT_BASE
need kcat haproxy python3
[[ -x $TANSU_BIN ]] || die "tansu is missing: run scripts/install-peers.sh"
if [[ " $TARGETS " == *" portcullis "* || " $TARGETS " == *" splice "* ]]; then
  portcullis_binary
fi

work_dir kafka-bench

# kcat with the librdkafka inside the confluent-kafka wheel (Debian's 2.0.2
# cannot talk to tansu).
lib=$(python3 -c "import confluent_kafka, glob, os; d = os.path.dirname(os.path.dirname(confluent_kafka.__file__)); print(glob.glob(os.path.join(d, 'confluent_kafka.libs', 'librdkafka*.so*'))[0])")
mkdir -p "$work/lib" && ln -s "$lib" "$work/lib/librdkafka.so.1"
kcat() { LD_LIBRARY_PATH=$work/lib command kcat "$@"; }

broker_port=$PORT_BASE
declare -A LISTEN=([direct]="$BROKER_IP:$broker_port" [portcullis]="127.0.0.1:$((PORT_BASE + 1))"
  [haproxy]="127.0.0.1:$((PORT_BASE + 2))" [splice]="127.0.0.1:$((PORT_BASE + 4))")
for target in $TARGETS; do
  [[ -n ${LISTEN[$target]:-} ]] || die "unknown target $target (direct portcullis splice haproxy)"
done

# ---- Portcullis: the topic policy for the client's identity -----------------------
cat >"$work/policy.yaml" <<YAML
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bench}
spec:
  endpointSelector: {matchLabels: {app: kafka}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: bench-client}}]
    toPorts:
    - ports: [{port: "$broker_port", protocol: TCP}]
      rules:
        kafka:
        - {role: produce, topic: bench}
        - {role: consume, topic: bench}
YAML
cat >"$work/portcullis.yaml" <<YAML
admin: 127.0.0.1:$((PORT_BASE + 3))
accessLog: /dev/null
listeners:
  - {name: kafka, address: 127.0.0.1, port: $((PORT_BASE + 1)), direction: ingress, protocol: tcp, upstream: "$BROKER_IP:$broker_port"}
endpoints:
  - {id: 4001, ips: [$BROKER_IP], labels: {app: kafka}}
identities:
  - {id: 21001, labels: {app: bench-client}, cidrs: [127.0.0.1/32]}
policies: [policy.yaml]
YAML
cat >"$work/haproxy.cfg" <<CFG
global
  nbthread 2
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen kafka
  bind 127.0.0.1:$((PORT_BASE + 2))
  server broker $BROKER_IP:$broker_port
CFG

# Each proxy is spawned under its target's name.
if [[ " $TARGETS " == *" portcullis "* ]]; then
  spawn_portcullis portcullis "$work/portcullis.yaml"
  wait_ready portcullis "127.0.0.1:$((PORT_BASE + 3))" || die "portcullis did not start"
fi
# "splice": the same, with large Produce record batches spliced (off by default).
if [[ " $TARGETS " == *" splice "* ]]; then
  sed -e "s/port: $((PORT_BASE + 1))/port: $((PORT_BASE + 4))/" -e "s/^admin: .*/admin: 127.0.0.1:$((PORT_BASE + 5))/" \
    "$work/portcullis.yaml" >"$work/splice.yaml"
  echo "kafka: {spliceMinBytes: 131072}" >>"$work/splice.yaml"
  spawn_portcullis splice "$work/splice.yaml"
  wait_ready splice "127.0.0.1:$((PORT_BASE + 5))" || die "portcullis (splice) did not start"
fi
if [[ " $TARGETS " == *" haproxy "* ]]; then
  spawn haproxy haproxy -q -f "$work/haproxy.cfg"
  wait_port haproxy 127.0.0.1 $((PORT_BASE + 2)) || die "haproxy did not start"
fi

log "payload: $MESSAGES records of $SIZE bytes"
python3 -c "
import sys
line = b'x' * ($SIZE - 1) + b'\n'
sys.stdout.buffer.write(line * $MESSAGES)
" >"$work/payload"
mb=$(awk -v n="$MESSAGES" -v s="$SIZE" 'BEGIN { printf "%.1f", n * s / 1e6 }')

now() { date +%s.%N; }
secs() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1e6 }'; }   # secs MICROSECONDS
# Context switches (voluntary + not) of all a process' threads so far.
ctx_of() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { s += $2 } END { print s }'; }
declare -A CPU_BROKER CPU_PROXY SYS_PROXY CTX_BROKER BUSY
declare -A PROD_MBS PROD_RPS CONS_MBS CONS_RPS P50 P99
# One value per round, space-separated, per "measure target".
declare -A ALL
keep() { ALL["$1 $2"]+="$3 "; }
median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for round in $(seq "$ROUNDS"); do
for target in $TARGETS; do
  ((ROUNDS == 1)) || log "round $round of $ROUNDS"
  addr=${LISTEN[$target]}
  spawn "tansu-$target" "$TANSU_BIN" broker --storage-engine memory://tansu/ --listener-url "tcp://$BROKER_IP:$broker_port" \
    --advertised-listener-url "tcp://$addr"
  tansu=${pid[tansu-$target]}
  wait_port "tansu-$target" "$BROKER_IP" "$broker_port" 200 || die "the tansu broker did not start"
  "$TANSU_BIN" topic create --broker "tcp://$BROKER_IP:$broker_port" --partitions 1 bench >/dev/null
  # The policy in force (through Portcullis): another topic is refused.
  if [[ $target == portcullis || $target == splice ]]; then
    "$TANSU_BIN" topic create --broker "tcp://$BROKER_IP:$broker_port" --partitions 1 other >/dev/null
    if echo no | kcat -b "$addr" -P -t other -X message.timeout.ms=5000 2>"$work/deny.txt"; then
      die "portcullis let a produce to an unlisted topic through"
    fi
    grep -q "authorization failed" "$work/deny.txt" || die "unexpected denial: $(cat "$work/deny.txt")"
  fi
  log "$target: producing"
  proxy_pid=${pid[$target]:-}
  read -r bu0 bk0 < <(cpu_us "$tansu")
  read -r pu0 pk0 < <(cpu_us ${proxy_pid:+"$proxy_pid"})
  ctx0=$(ctx_of "$tansu")
  read -r busy0 _ < <(machine_us)
  t0=$(now)
  kcat -b "$addr" -P -t bench -l -X linger.ms=5 -X batch.num.messages=10000 -X queue.buffering.max.kbytes=1048576 \
    -X message.timeout.ms=60000 "$work/payload"
  t1=$(now)
  # Cores busy machine-wide while producing: near the machine's count, the run was CPU-bound.
  read -r busy1 _ < <(machine_us)
  read -r bu1 bk1 < <(cpu_us "$tansu")
  read -r pu1 pk1 < <(cpu_us ${proxy_pid:+"$proxy_pid"})
  BUSY[$target]=$(awk -v b=$((busy1 - busy0)) -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f", b / 1e6 / (t1 - t0) }')
  CPU_BROKER[$target]=$(secs $((bu1 + bk1 - bu0 - bk0)))
  keep ctx_broker "$target" $(($(ctx_of "$tansu") - ctx0))
  CPU_PROXY[$target]=- SYS_PROXY[$target]=-
  if [[ -n $proxy_pid ]]; then
    CPU_PROXY[$target]=$(secs $((pu1 + pk1 - pu0 - pk0)))
    SYS_PROXY[$target]=$(secs $((pk1 - pk0)))
  fi
  t2=$(now)
  if ((CONSUME)); then
    log "$target: consuming"
    got=$(kcat -b "$addr" -C -t bench -o beginning -e -q -c "$MESSAGES" -X fetch.max.bytes=52428800 -X fetch.message.max.bytes=8388608 | wc -l)
    t2=$(now)
    ((got == MESSAGES)) || die "$target: consumed $got of $MESSAGES records"
  fi
  log "$target: latency"
  lat=$(python3 "$repo/bench/kafka_latency.py" "$addr" bench "$LATENCY_COUNT")
  stop "tansu-$target"
  keep prod "$target" "$(awk -v a="$t0" -v b="$t1" -v m="$mb" 'BEGIN { printf "%.1f", m / (b - a) }')"
  if ((CONSUME)); then
    keep cons "$target" "$(awk -v a="$t1" -v b="$t2" -v m="$mb" 'BEGIN { printf "%.1f", m / (b - a) }')"
  fi
  keep p50 "$target" "$(python3 -c "import json,sys; print('%.2f' % json.loads(sys.argv[1])['p50'])" "$lat")"
  keep p99 "$target" "$(python3 -c "import json,sys; print('%.2f' % json.loads(sys.argv[1])['p99'])" "$lat")"
  keep cpu_broker "$target" "${CPU_BROKER[$target]}"
  keep cpu_proxy "$target" "${CPU_PROXY[$target]}"
done
done
for target in $TARGETS; do
  PROD_MBS[$target]=$(median <<<"${ALL["prod $target"]}")
  PROD_RPS[$target]=$(awk -v m="${PROD_MBS[$target]}" -v s="$SIZE" 'BEGIN { printf "%.0f", m * 1e6 / s }')
  CONS_MBS[$target]=$(median <<<"${ALL["cons $target"]:-}")
  CONS_RPS[$target]=$(awk -v m="${CONS_MBS[$target]}" -v s="$SIZE" 'BEGIN { if (m == "-") print "-"; else printf "%.0f", m * 1e6 / s }')
  P50[$target]=$(median <<<"${ALL["p50 $target"]}")
  P99[$target]=$(median <<<"${ALL["p99 $target"]}")
  CPU_BROKER[$target]=$(median <<<"${ALL["cpu_broker $target"]}")
  CPU_PROXY[$target]=$(median <<<"${ALL["cpu_proxy $target"]}")
  CTX_BROKER[$target]=$(median <<<"${ALL["ctx_broker $target"]}")
done

printf '\n%-11s %12s %12s %8s %12s %12s %8s %9s %9s %11s\n' target "produce MB/s" "records/s" "vs dir" "consume MB/s" "records/s" "vs dir" "p50 ms" "p99 ms" "+p99 ms"
for target in $TARGETS; do
  printf '%-11s %12s %12s %8s %12s %12s %8s %9s %9s %11s\n' "$target" \
    "${PROD_MBS[$target]}" "${PROD_RPS[$target]}" "$(ratio "${PROD_MBS[$target]}" "${PROD_MBS[direct]:-0}")" \
    "${CONS_MBS[$target]}" "${CONS_RPS[$target]}" "$(ratio "${CONS_MBS[$target]}" "${CONS_MBS[direct]:-0}")" \
    "${P50[$target]}" "${P99[$target]}" \
    "$(awk -v a="${P99[$target]}" -v b="${P99[direct]:-0}" 'BEGIN { printf "%+.2f", a - b }')"
done
if ((ROUNDS > 1)); then
  printf '\nproduce MB/s in each round:\n'
  for target in $TARGETS; do printf '  %-11s %s\n' "$target" "${ALL["prod $target"]}"; done
fi
printf '\nCPU seconds used while producing %s MB (broker / proxy; proxy per GB produced, and of that in the kernel;\nbroker context switches per GB):\n' "$mb"
for target in $TARGETS; do
  printf '  %-11s %s / %s' "$target" "${CPU_BROKER[$target]}" "${CPU_PROXY[$target]}"
  [[ ${CPU_PROXY[$target]} == - ]] || awk -v c="${CPU_PROXY[$target]}" -v k="${SYS_PROXY[$target]}" -v m="$mb" \
    'BEGIN { printf "; %.2f s/GB (kernel %.2f)", c * 1000 / m, k * 1000 / m }'
  awk -v c="${CTX_BROKER[$target]}" -v m="$mb" -v b="${BUSY[$target]}" \
    'BEGIN { printf "; broker %.0f switches/GB; machine %s cores busy\n", c * 1000 / m, b }'
done
