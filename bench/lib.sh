# shellcheck shell=bash
# What the benchmark scripts in bench/ share; each sources it first, with
# BENCH set to its log tag:
#
#   BENCH=dns-bench
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# - log / die, need (tools on PATH), need_whole (whole-number knobs);
# - portcullis_binary: PORTCULLIS_BIN as given, else a release build;
# - work_dir: a temp dir and the one exit trap, which stops everything spawn
#   started and keeps the dir when the script fails (or KEEP_WORK=1);
# - spawn / stop, wait_port / wait_ready / wait_for;
# - cpu_us / machine_us: CPU time from /proc, always in microseconds;
# - callgrind_*: Portcullis' user-space instructions;
# - load_at_start, ratio.

set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KEEP_WORK=${KEEP_WORK:-0}             # 1: keep the temp dir (configs, logs) after the run
PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} # RUST_LOG for Portcullis during the run

# Messages go to the script's stderr as it was at the start, also from a
# trap that runs while a command's stderr is redirected.
exec {log_fd}>&2
log() { printf '[%s] %s\n' "$BENCH" "$*" >&"$log_fd"; }
die() { log "ERROR: $*"; exit 1; }

# need TOOL... : each on PATH, else die naming the script that installs it.
need() {
  local tool
  for tool; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run scripts/install-peers.sh"
  done
}

# need_whole VAR... : each variable holds a whole number.
need_whole() {
  local v
  for v; do [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"; done
}

# portcullis_binary: exports PORTCULLIS_BIN, the binary to measure. When it is
# set it is used as it is (made absolute, not rebuilt); otherwise
# `cargo build --release -p portcullis` builds it into CARGO_TARGET_DIR
# (default target/), which is exported too.
portcullis_binary() {
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
  if [[ -n ${PORTCULLIS_BIN:-} ]]; then
    [[ -x $PORTCULLIS_BIN && -f $PORTCULLIS_BIN ]] || die "PORTCULLIS_BIN=$PORTCULLIS_BIN is not an executable"
    PORTCULLIS_BIN=$(readlink -f "$PORTCULLIS_BIN")
    log "using PORTCULLIS_BIN=$PORTCULLIS_BIN as it is (not rebuilt)"
  else
    need cargo
    PORTCULLIS_BIN=$CARGO_TARGET_DIR/release/portcullis
    log "building portcullis (release) in $CARGO_TARGET_DIR"
    (cd "$repo" && cargo build --release -p portcullis >&2)
  fi
  export PORTCULLIS_BIN
}

# ------------------------------------------------------ work dir, processes --

declare -A pid=()   # name -> pid of what spawn started and stop has not stopped
work=

# work_dir NAME: sets work to a fresh /tmp/portcullis-NAME.XXXXXX and installs
# the exit trap. At exit every spawned process is stopped; the dir is removed
# unless the script fails or KEEP_WORK=1. A script may define on_exit, which
# runs before the dir is kept or removed.
work_dir() {
  work=$(mktemp -d "/tmp/portcullis-$1.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM HUP
}

# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$? p
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
  if declare -F on_exit >/dev/null; then on_exit || true; fi
  if [[ $KEEP_WORK == 1 || $rc != 0 ]]; then
    log "configs and logs kept in $work"
  else
    rm -rf "$work"
  fi
}

# spawn NAME CMD... : CMD in the background, its output in $work/NAME.log.
spawn() {
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pid[$name]=$!
}

# spawn_portcullis NAME CONFIG [WRAPPER...]: `portcullis run --config CONFIG`
# (behind WRAPPER, e.g. valgrind), spawned as NAME with RUST_LOG=$PORTCULLIS_LOG.
spawn_portcullis() {
  local name=$1 config=$2
  shift 2
  RUST_LOG=$PORTCULLIS_LOG spawn "$name" "$@" "$PORTCULLIS_BIN" run --config "$config"
}

# stop NAME: stops what spawn started as NAME (nothing if it did not).
stop() {
  local p=${pid[$1]:-}
  [[ -n $p ]] || return 0
  unset "pid[$1]"
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# wait_for NAME WHAT TENTHS CMD... : runs CMD every 0.1 s, at most TENTHS
# times, until it succeeds. Fails, saying NAME WHAT and showing the end of
# NAME's log, when time runs out or NAME's process exits.
wait_for() {
  local name=$1 what=$2 tries=$3 i
  shift 3
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    kill -0 "${pid[$name]:-0}" 2>/dev/null || break
    sleep 0.1
  done
  log "$name $what; its log:"
  tail -n 20 "$work/$name.log" >&2 || true
  return 1
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }   # port_open HOST PORT
admin_ready() { curl -sf -o /dev/null "http://$1/ready"; }  # admin_ready HOST:PORT

# wait_port NAME HOST PORT [TENTHS]: until something accepts on HOST:PORT (15 s).
wait_port() { wait_for "$1" "is not listening on $2:$3" "${4:-150}" port_open "$2" "$3"; }

# wait_ready NAME ADMIN [TENTHS]: until Portcullis' admin at ADMIN says /ready (15 s).
wait_ready() { wait_for "$1" "is not ready (http://$2/ready)" "${3:-150}" admin_ready "$2"; }

# --------------------------------------------------------------- CPU time --

CLK_TCK=$(getconf CLK_TCK)

# cpu_us PID... : "user system" CPU microseconds used so far by the PIDs and
# all their descendants (nginx's workers are children of its master; a
# process's threads are in its own count). "0 0" for no PID.
cpu_us() {
  local pids=("$@") i=0
  while ((i < ${#pids[@]})); do
    # shellcheck disable=SC2207  # pids are words
    pids+=($(pgrep -P "${pids[i]}" || true))
    i=$((i + 1))
  done
  # After "pid (comm) ", utime and stime are the 12th and 13th fields.
  for i in "${pids[@]}"; do sed 's/.*) //' "/proc/$i/stat" 2>/dev/null || true; done |
    awk -v k="$CLK_TCK" '{ u += $12; s += $13 } END { printf "%.0f %.0f\n", u * 1e6 / k, s * 1e6 / k }'
}

# machine_us: "busy softirq" CPU microseconds of all cores so far; busy is
# user, nice, system, irq, softirq and steal.
machine_us() {
  awk -v k="$CLK_TCK" '/^cpu / { printf "%.0f %.0f\n", ($2 + $3 + $4 + $7 + $8 + $9) * 1e6 / k, $8 * 1e6 / k }' /proc/stat
}

# ------------------------------------------------------------ instructions --
# Instructions Portcullis executes in user space, all threads, counted by
# valgrind's callgrind. Unlike throughput on a shared machine this count does
# not drift, so it shows what a change to the proxy's own code saves; the
# kernel's share is not counted.

# callgrind_start CONFIG ADMIN: restarts Portcullis (spawned as portcullis)
# under callgrind, spawned as callgrind, and waits until it is ready.
callgrind_start() {
  stop portcullis
  spawn_portcullis callgrind "$1" valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out"
  wait_ready callgrind "$2" 600
}

# callgrind_zero: the count starts over.
callgrind_zero() { callgrind_control -z "${pid[callgrind]}" >/dev/null 2>&1; }

# callgrind_total: the instructions since callgrind_zero.
callgrind_total() {
  rm -f "$work"/callgrind.out.*
  callgrind_control -d "${pid[callgrind]}" >/dev/null 2>&1
  awk '/^summary:/ { s += $2 } END { print s + 0 }' "$work"/callgrind.out.*
}

# ------------------------------------------------------------------ report --

# load_at_start: sets load to the 1-minute load average, warning when other
# work already shares the CPUs.
load_at_start() {
  load=$(cut -d' ' -f1 /proc/loadavg)
  if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
    log "WARNING: load average is $load before starting: other work shares the CPUs, numbers will be low and noisy"
  fi
}

# ratio A B: "A/Bx" to two places, "-" when either is missing or B is not positive.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && a != "-" && b + 0 > 0) printf "%.2fx", a / b; else print "-" }'
}
