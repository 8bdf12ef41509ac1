#!/usr/bin/env bash
# DNS benchmark: dnsperf against dnsmasq directly, through dnsdist enforcing the
# same allow-list as the Portcullis policy, and through Portcullis' DNS proxy
# (a CNP `dns: [{matchPattern: "*.bench.test"}]` rule, toFQDNs harvesting on),
# all on loopback in one run. Prints queries/s, latency at saturation and at a
# fixed rate, ratios to direct and Portcullis / dnsdist. See bench/README.md.
#
#   bash bench/dns.sh
#   SKIP_PORTCULLIS=1 bash bench/dns.sh          # direct and dnsdist only, no build
#   PORTCULLIS_BIN=target/release/portcullis ROUNDS=3 bash bench/dns.sh
BENCH=dns-bench
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}          # seconds of the measured saturating run, per leg
WARMUP=${WARMUP:-2}               # unmeasured seconds of load before it
OUTSTANDING=${OUTSTANDING:-200}   # dnsperf -q: queries in flight
CLIENTS=${CLIENTS:-10}            # dnsperf -c: sockets (source ports)
THREADS=${THREADS:-1}             # dnsperf -T
RATE=${RATE:-20000}               # dnsperf -Q of the fixed-rate latency run (0: skip it)
RATE_DURATION=${RATE_DURATION:-5} # its seconds
NAMES=${NAMES:-1000}              # names in the zone and in the query file
ROUNDS=${ROUNDS:-1}               # >1: legs alternate ROUNDS times, the median-qps round is shown
SKIP_PORTCULLIS=${SKIP_PORTCULLIS:-0}
TARGETS=${TARGETS:-"direct dnsdist portcullis"}
DNSDIST_LISTENERS=${DNSDIST_LISTENERS:-1}  # dnsdist UDP listener threads (reusePort sockets)
DNSMASQ_NICE=${DNSMASQ_NICE:-0}   # e.g. -5 (root) to favour the origin over load generator and proxy
INSTRUCTIONS=${INSTRUCTIONS:-0}   # N > 0: afterwards, Portcullis' user-space instructions per query (callgrind, ~N queries)

PORT=5300
ORIGIN_IP=127.0.0.60   # dnsmasq
CLIENT_IP=127.0.0.61   # dnsperf and dig send from here (Portcullis endpoint 1)
declare -A IP=([direct]=$ORIGIN_IP [dnsdist]=127.0.0.62 [portcullis]=127.0.0.63)
declare -A DESC=([direct]="dnsmasq" [dnsdist]="dnsdist ($DNSDIST_LISTENERS udp thr)" [portcullis]="portcullis")
ADMIN=127.0.0.1:19953

[[ $SKIP_PORTCULLIS == 1 ]] && TARGETS=$(tr ' ' '\n' <<<"$TARGETS" | grep -vx portcullis | tr '\n' ' ')
[[ " $TARGETS " == *" direct "* ]] || die "TARGETS must include direct (every ratio is to it)"
for t in $TARGETS; do [[ -n ${IP[$t]:-} ]] || die "unknown target $t (direct dnsdist portcullis)"; done
need_whole DURATION WARMUP OUTSTANDING CLIENTS THREADS RATE RATE_DURATION NAMES ROUNDS DNSDIST_LISTENERS INSTRUCTIONS
((NAMES >= 1 && NAMES <= 62500)) || die "NAMES must be in 1..62500"
((DNSDIST_LISTENERS >= 1)) || die "DNSDIST_LISTENERS must be at least 1"
need dig dnsperf curl awk
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[[ -x $DNSMASQ ]] || die "dnsmasq is missing: run scripts/install-peers.sh"
if [[ " $TARGETS " == *" dnsdist "* ]]; then
  need dnsdist
fi

if [[ " $TARGETS " == *" portcullis "* ]]; then
  if ((INSTRUCTIONS > 0)); then
    need valgrind
  fi
  portcullis_binary
fi

work_dir dns-bench
failed=0
# shellcheck disable=SC2317  # invoked by the exit trap
on_exit() { rm -f "$work"/*.v; }   # dnsperf's per-query lines: large, and parsed already

# ------------------------------------------------------------------- zone --
# host00001.bench.test .. : A 10.60.x.y, served by dnsmasq from an addn-hosts file.
awk -v n="$NAMES" 'BEGIN { for (i = 1; i <= n; i++) printf "10.60.%d.%d host%05d.bench.test\n", int(i / 250), i % 250 + 1, i }' >"$work/hosts"
awk '{ print $2, "A" }' "$work/hosts" >"$work/queries"
first_name=$(awk 'NR == 1 { print $2 }' "$work/hosts")
first_addr=$(awk 'NR == 1 { print $1 }' "$work/hosts")

# ---------------------------------------------------------------- configs --
# dnsdist: the allow-list as Cilium compiles `matchPattern: "*.bench.test"` (one
# label of [-a-zA-Z0-9_]*, anchored; dnsdist matches the name without its final
# dot and case-insensitively), everything else REFUSED, as Cilium's DNS proxy
# answers by default. No packet cache (dnsdist has none unless one is set with
# setPacketCache): every allowed query is forwarded to dnsmasq, as Portcullis
# must, since it harvests the answer. Threads: DNSDIST_LISTENERS UDP listener
# threads (SO_REUSEPORT sockets on the same address) and dnsdist's one responder
# thread for the backend.
{
  echo 'setSecurityPollSuffix("")  -- else it looks up a name outside at start'
  echo "setLocal(\"${IP[dnsdist]}:$PORT\", {reusePort=true})"
  for ((i = 1; i < DNSDIST_LISTENERS; i++)); do echo "addLocal(\"${IP[dnsdist]}:$PORT\", {reusePort=true})"; done
} >"$work/dnsdist.conf"
cat >>"$work/dnsdist.conf" <<EOF
-- dnsmasq answers the default check (a.root-servers.net) REFUSED, which dnsdist counts
-- as up: check a zone name and require an answer, so "up" means the zone is served.
newServer({address="$ORIGIN_IP:$PORT", name="dnsmasq", checkName="$first_name.", checkType="A", mustResolve=true})
addAction(NotRule(RegexRule("^[-a-zA-Z0-9_]*\\\\.bench\\\\.test\$")), RCodeAction(DNSRCode.REFUSED))
EOF

mkdir -p "$work/portcullis"
cat >"$work/portcullis/policy.yaml" <<EOF
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: dns-bench}
spec:
  endpointSelector: {matchLabels: {app: bench}}
  egress:
  - toEndpoints:
    - matchLabels: {"k8s:io.kubernetes.pod.namespace": kube-system, "k8s:k8s-app": kube-dns}
    toPorts:
    - ports: [{port: "$PORT", protocol: ANY}]
      rules:
        dns: [{matchPattern: "*.bench.test"}]
  - toFQDNs: [{matchPattern: "*.bench.test"}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
EOF
cat >"$work/portcullis/portcullis.yaml" <<EOF
admin: $ADMIN
accessLog: "off"
listeners:
- name: dns
  address: ${IP[portcullis]}
  port: $PORT
  direction: egress
  protocol: dns
  upstream: $ORIGIN_IP:$PORT
endpoints:
- id: 1
  ips: [$CLIENT_IP]
  labels: {app: bench}
identities:
- id: 100
  namespace: kube-system
  labels: {k8s-app: kube-dns}
  cidrs: [$ORIGIN_IP/32]
policies: [policy.yaml]
EOF

# -------------------------------------------------------------- processes --
# status NAME SERVER: the rcode dig gets for an A query sent from the client address.
status() {
  dig -b "$CLIENT_IP" -p "$PORT" "@$2" "$1" A +tries=1 +time=2 2>/dev/null |
    sed -n 's/.*status: \([A-Z]*\).*/\1/p'
}
# shellcheck disable=SC2317  # invoked by wait_for
answers() { [[ $(status "$first_name" "$1") == NOERROR ]]; }   # answers SERVER
# wait_answer NAME SERVER: until an allowed query sent to SERVER gets NOERROR.
wait_answer() { wait_for "$1" "does not answer $first_name on $2:$PORT" 100 answers "$2"; }

# One thread, all from memory: names from the hosts file, long TTL, no upstream.
# --local makes unknown names under bench.test NXDOMAIN rather than REFUSED.
nice_cmd=()
[[ $DNSMASQ_NICE != 0 ]] && nice_cmd=(nice -n "$DNSMASQ_NICE")
spawn dnsmasq "${nice_cmd[@]}" "$DNSMASQ" --keep-in-foreground --log-facility=- --conf-file=/dev/null --pid-file= \
  --user="$(id -un)" --group="$(id -gn)" --port=$PORT --listen-address=$ORIGIN_IP --bind-interfaces \
  --no-resolv --no-hosts --addn-hosts="$work/hosts" --local=/bench.test/ --local-ttl=86400 --cache-size=10000
wait_answer dnsmasq "$ORIGIN_IP" || die "dnsmasq did not start"

start_target() {
  case $1 in
    direct) ;;
    dnsdist)
      spawn dnsdist dnsdist --supervised --disable-syslog -C "$work/dnsdist.conf"
      wait_answer dnsdist "${IP[dnsdist]}" ;;
    portcullis)
      spawn_portcullis portcullis "$work/portcullis/portcullis.yaml"
      wait_ready portcullis "$ADMIN" && wait_answer portcullis "${IP[portcullis]}" ;;
  esac
}

# The allow-list in force: an allowed name is answered with dnsmasq's record; a
# forwarded name dnsmasq lacks is its NXDOMAIN; names outside it are REFUSED.
check_target() {
  local server=${IP[$1]} got
  got=$(dig -b "$CLIENT_IP" -p "$PORT" "@$server" "$first_name" A +short +tries=1 +time=2 2>&1) || true
  [[ $got == "$first_addr" ]] || { echo "$first_name A gave '$got', not $first_addr"; return 1; }
  [[ $(status nope.bench.test "$server") == NXDOMAIN ]] || { echo "nope.bench.test is not NXDOMAIN"; return 1; }
  [[ $1 == direct ]] && return 0
  local name st
  for name in www.example.com "a.$first_name" bench.test xbench.test; do
    st=$(status "$name" "$server")
    [[ $st == REFUSED ]] || { echo "$name gave '${st:-no answer}', not REFUSED"; return 1; }
  done
}

# ----------------------------------------------------------------- measure --
# p50 and p99 in ms of the NOERROR/NXDOMAIN... lines of dnsperf -v ("> RCODE name type secs";
# lost queries are "> T name type" and are left out: dnsperf reports them).
percentiles() {
  awk '$1 == ">" && NF == 5 { us = int($5 * 1e6 + 0.5); h[us]++; n++; if (us > max) max = us }
    END {
      if (n == 0) { print "- -"; exit }
      t50 = n * 0.50; t99 = n * 0.99; c = 0; p50 = -1
      for (us = 0; us <= max; us++) {
        if (!(us in h)) continue
        c += h[us]
        if (p50 < 0 && c >= t50) p50 = us
        if (c >= t99) { p99 = us; break }
      }
      printf "%.3f %.3f\n", p50 / 1000, p99 / 1000
    }' "$1"
}

# field FILE LABEL: the first number after "LABEL:" in dnsperf's summary
field() { sed -n "s/^ *$2: *\([0-9.]*\).*/\1/p" "$1" | head -1; }

declare -A R=()   # "$target,$round,key" -> value
measure() {   # measure TARGET ROUND
  local t=$1 r=$2 server=${IP[$1]} out=$work/$1-$2 proxy_pid=${pid[$1]:-}
  local args=(-s "$server" -p "$PORT" -a "$CLIENT_IP" -d "$work/queries" -c "$CLIENTS" -T "$THREADS" -t 2)
  ((WARMUP > 0)) && dnsperf "${args[@]}" -q "$OUTSTANDING" -l "$WARMUP" >/dev/null 2>&1
  local mu0 mk0 pu0 pk0 b0 s0 t0 mu1 mk1 pu1 pk1 b1 s1 t1
  read -r mu0 mk0 < <(cpu_us "${pid[dnsmasq]}")
  read -r pu0 pk0 < <(cpu_us ${proxy_pid:+"$proxy_pid"})
  read -r b0 s0 < <(machine_us)
  t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S'
  { time dnsperf "${args[@]}" -q "$OUTSTANDING" -l "$DURATION" -v >"$out.v" 2>"$out.err"; } 2>"$out.time" ||
    { R[$t,$r,fail]="dnsperf failed: $(tail -n 1 "$out.err")"; log "$t: ${R[$t,$r,fail]}"; return 1; }
  read -r mu1 mk1 < <(cpu_us "${pid[dnsmasq]}")
  read -r pu1 pk1 < <(cpu_us ${proxy_pid:+"$proxy_pid"})
  read -r b1 s1 < <(machine_us)
  t1=$(date +%s.%N)
  grep -v '^>' "$out.v" >"$out.txt"
  read -r "R[$t,$r,p50]" "R[$t,$r,p99]" < <(percentiles "$out.v")
  rm -f "$out.v"
  R[$t,$r,qps]=$(field "$out.txt" "Queries per second")
  R[$t,$r,avg]=$(awk -v s="$(field "$out.txt" "Average Latency (s)")" 'BEGIN { printf "%.3f", s * 1000 }')
  # The proxy's CPU per query split into user space and kernel (its system
  # calls, and the loopback delivery they run): the kernel part is what any
  # proxy forwarding the same datagrams pays.
  R[$t,$r,split]=$(awk -v u=$((pu1 - pu0)) -v k=$((pk1 - pk0)) -v n="$(field "$out.txt" "Queries completed")" \
    -v x="$proxy_pid" 'BEGIN { if (x == "" || n == 0) print "-"; else printf "%.1f + %.1f", u / n, k / n }')
  R[$t,$r,lost]=$(sed -n 's/^ *Queries lost: *[0-9]* (\([0-9.]*%\)).*/\1/p' "$out.txt")
  R[$t,$r,codes]=$(sed -n 's/^ *Response codes: *//p' "$out.txt")
  local wall gen
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  gen=$(awk '{ print $1 + $2 }' "$out.time")
  # CPU in cores (CPU seconds / wall seconds) over the measured run (dnsperf itself
  # has a sender and a receiver thread: it can use more than one).
  # "other" is every other process: a concurrent build shows up there.
  R[$t,$r,cpu]=$(awk -v m=$((mu1 + mk1 - mu0 - mk0)) -v p=$((pu1 + pk1 - pu0 - pk0)) -v b=$((b1 - b0)) -v s=$((s1 - s0)) \
    -v g="$gen" -v w="$wall" -v x="$proxy_pid" 'BEGIN { k = 1e6; o = (b - s - m - p) / k - g; if (o < 0) o = 0
      printf "%.2f %s %.2f %.2f %.2f %.2f", m / k / w, (x == "" ? "-" : sprintf("%.2f", p / k / w)), g / w, s / k / w, o / w, b / k / w }')
  # A leg that did not answer NOERROR to every completed query measured nothing useful.
  local codes=${R[$t,$r,codes]}
  if [[ -z ${R[$t,$r,qps]} || ! $codes =~ ^NOERROR\ [0-9]+\ \(100\.00%\)$ ]]; then
    R[$t,$r,fail]="response codes '${codes:-none}', not all NOERROR"
    log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    log "!!! $t: FAILED BENCH: response codes '${codes:-none}' (every query must be NOERROR)"
    log "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    return 1
  fi
  if awk -v l="${R[$t,$r,lost]%\%}" 'BEGIN { exit !(l > 1) }'; then
    R[$t,$r,fail]="${R[$t,$r,lost]} of the queries lost"
    log "!!! $t: FAILED BENCH: ${R[$t,$r,fail]}"
    return 1
  fi
  if ((RATE > 0)); then
    read -r pu0 pk0 < <(cpu_us ${proxy_pid:+"$proxy_pid"})
    dnsperf "${args[@]}" -q "$OUTSTANDING" -Q "$RATE" -l "$RATE_DURATION" -v >"$out-rate.v" 2>/dev/null ||
      { R[$t,$r,fail]="fixed-rate dnsperf failed"; log "$t: ${R[$t,$r,fail]}"; return 1; }
    read -r pu1 pk1 < <(cpu_us ${proxy_pid:+"$proxy_pid"})
    grep -v '^>' "$out-rate.v" >"$out-rate.txt"
    # The proxy's CPU per query at a rate every leg sustains: unlike saturating
    # qps, this does not depend on how the cores are shared with dnsperf and dnsmasq.
    R[$t,$r,rcpu]=$(awk -v p=$((pu1 + pk1 - pu0 - pk0)) -v n="$(field "$out-rate.txt" "Queries completed")" -v x="$proxy_pid" \
      'BEGIN { if (x == "" || n == 0) print "-"; else printf "%.1f", p / n }')
    read -r "R[$t,$r,rp50]" "R[$t,$r,rp99]" < <(percentiles "$out-rate.v")
    rm -f "$out-rate.v"
    sed -n 's/^ *Response codes: *//p' "$out-rate.txt" | grep -qE '^NOERROR [0-9]+ \(100\.00%\)$' ||
      { R[$t,$r,fail]="at $RATE qps: response codes '$(sed -n 's/^ *Response codes: *//p' "$out-rate.txt")'"
        log "!!! $t: FAILED BENCH ${R[$t,$r,fail]}"; return 1; }
  fi
}

# Instructions Portcullis executes in user space per query, all threads, over
# about INSTRUCTIONS queries (whole passes over the names) after a warm-up pass;
# the kernel's share (the two UDP hops, most of the proxy's CPU) is not counted.
count_instructions() {
  local passes=$(((INSTRUCTIONS + NAMES - 1) / NAMES)) out completed ir
  local args=(-s "${IP[portcullis]}" -p "$PORT" -a "$CLIENT_IP" -d "$work/queries" -c "$CLIENTS" -t 5 -Q 1000)
  callgrind_start "$work/portcullis/portcullis.yaml" "$ADMIN" || return 1
  wait_answer callgrind "${IP[portcullis]}" || return 1
  dnsperf "${args[@]}" -n 1 >/dev/null 2>&1
  callgrind_zero
  out=$(dnsperf "${args[@]}" -n "$passes" 2>&1)
  completed=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' <<<"$out")
  if ! grep -qE '^ *Response codes: *NOERROR [0-9]+ \(100\.00%\)$' <<<"$out" || ((${completed:-0} == 0)); then
    log "dnsperf under callgrind: $out"
    return 1
  fi
  ir=$(callgrind_total)
  echo
  echo "Portcullis user-space instructions per query (callgrind, $completed queries at 1000 qps): $((ir / completed))"
}

load_at_start

declare -A skip=()
for t in $TARGETS; do
  [[ $t == direct ]] && continue
  start_target "$t" || { skip[$t]="did not start, see $work/$t.log"; failed=1; continue; }
done
for t in $TARGETS; do
  [[ -n ${skip[$t]:-} ]] && continue
  if ! reason=$(check_target "$t"); then
    skip[$t]="FAILED check: $reason"
    failed=1
    log "!!! $t: FAILED BENCH: $reason"
  fi
done

for ((round = 1; round <= ROUNDS; round++)); do
  for t in $TARGETS; do
    [[ -n ${skip[$t]:-} ]] && continue
    log "round $round/$ROUNDS: $t (${DURATION}s saturating$( ((RATE > 0)) && echo ", ${RATE_DURATION}s at $RATE qps"))"
    measure "$t" "$round" || { skip[$t]="FAILED BENCH: ${R[$t,$round,fail]:-see above}"; failed=1; }
  done
done

# The round with the median queries/s of each target.
declare -A pick=()
for t in $TARGETS; do
  [[ -n ${skip[$t]:-} ]] && continue
  pick[$t]=$(for ((round = 1; round <= ROUNDS; round++)); do echo "${R[$t,$round,qps]} $round"; done |
    sort -g | awk '{ a[NR] = $2 } END { print a[int((NR + 1) / 2)] }')
done
get() { local r=${pick[$1]:-}; [[ -n $r ]] && echo "${R[$1,$r,$2]:-}"; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && a != "-" && b != "-") printf "%+.3f", a - b; else print "-" }'; }

echo
echo "Portcullis DNS benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), load average at start $load"
echo "dnsperf -c $CLIENTS -T $THREADS -q $OUTSTANDING -l $DURATION (after ${WARMUP}s warm-up), $NAMES names, A queries from $CLIENT_IP; round with median qps of $ROUNDS"
printf '%-20s %10s %9s %8s %8s %8s %9s %7s   %-23s\n' target qps vs_direct avg_ms p50_ms p99_ms "+p99_ms" lost "cpu: dnsmasq/proxy/dnsperf/softirq/other/machine"
for t in $TARGETS; do
  if [[ -n ${skip[$t]:-} ]]; then
    printf '%-20s %s\n' "${DESC[$t]}" "${skip[$t]}"
    continue
  fi
  printf '%-20s %10.0f %9s %8s %8s %8s %9s %7s   %s\n' "${DESC[$t]}" "$(get "$t" qps)" \
    "$(ratio "$(get "$t" qps)" "$(get direct qps)")" "$(get "$t" avg)" "$(get "$t" p50)" "$(get "$t" p99)" \
    "$(added "$(get "$t" p99)" "$(get direct p99)")" "$(get "$t" lost)" "$(get "$t" cpu | tr ' ' /)"
done
if ((RATE > 0)); then
  echo
  echo "latency at a fixed $RATE qps (dnsperf -Q $RATE -l $RATE_DURATION), same round"
  printf '%-20s %8s %8s %9s %17s\n' target p50_ms p99_ms "+p99_ms" "proxy_cpu_us/query"
  for t in $TARGETS; do
    [[ -n ${skip[$t]:-} ]] && continue
    printf '%-20s %8s %8s %9s %17s\n' "${DESC[$t]}" "$(get "$t" rp50)" "$(get "$t" rp99)" \
      "$(added "$(get "$t" rp99)" "$(get direct rp99)")" "$(get "$t" rcpu)"
  done
fi
echo
if ((ROUNDS > 1)); then
  echo "qps of every round, in the order run (legs alternate within a round):"
  for t in $TARGETS; do
    [[ -n ${pick[$t]:-} ]] || continue
    printf '  %-20s' "${DESC[$t]}"
    for ((round = 1; round <= ROUNDS; round++)); do printf ' %9.0f' "${R[$t,$round,qps]:-0}"; done
    echo
  done
  if [[ -n ${pick[portcullis]:-} && -n ${pick[dnsdist]:-} ]]; then
    printf '  %-20s' "portcullis / dnsdist"
    for ((round = 1; round <= ROUNDS; round++)); do
      printf ' %9s' "$(ratio "${R[portcullis,$round,qps]:-}" "${R[dnsdist,$round,qps]:-}")"
    done
    echo
  fi
  echo
fi
for pair in "dnsdist direct" "portcullis direct" "portcullis dnsdist"; do
  read -r a b <<<"$pair"
  [[ -n ${pick[$a]:-} && -n ${pick[$b]:-} ]] || continue
  line="$a / $b: $(ratio "$(get "$a" qps)" "$(get "$b" qps)") qps"
  [[ $pair == "portcullis dnsdist" ]] && line+=" (target >= 1.20x)"
  echo "$line"
done
echo "cpu = cores busy during the saturating run (CPU seconds / wall seconds): dnsmasq, the proxy, dnsperf,"
echo "      kernel softirq (loopback delivery, whoever it ran for) and every other process (a build shows here);"
echo "      machine = all cores busy. Softirq that ran in a process's context is in that process's time too."
for t in dnsdist portcullis; do
  [[ -n ${pick[$t]:-} ]] || continue
  echo "$t CPU per query while saturated, user + kernel: $(get "$t" split) us"
done
for t in $TARGETS; do
  [[ -n ${pick[$t]:-} ]] || continue
  awk -v c="$(get "$t" cpu | cut -d' ' -f1)" 'BEGIN { exit !(c >= 0.95) }' &&
    echo "note: dnsmasq used a whole core on the $t leg: the origin, not the proxy, limited it"
done
if ((INSTRUCTIONS > 0)) && [[ -n ${pick[portcullis]:-} ]]; then
  count_instructions || { log "counting instructions failed, see $work/callgrind.log"; failed=1; }
fi
exit "$failed"
