#!/usr/bin/env bash
# xDS benchmark: update latency (push -> ACK -> enforced), full resync of a large
# node (time and RSS), and throughput while the agent pushes updates. The agent is
# the in-process xDS server of the test harness; the work is done by the
# `xds_bench` example of the portcullis-tests crate (tests/examples/xds_bench.rs).
# Installs nothing. See bench/README.md.
#
#   bash bench/xds.sh
#   UPDATES=100 ENDPOINTS=100 DURATION=3 bash bench/xds.sh       # a quick run
#   PHASES=resync bash bench/xds.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

log() { printf '[xds-bench] %s\n' "$*" >&2; }
die() { printf '[xds-bench] ERROR: %s\n' "$*" >&2; exit 1; }

for tool in cargo nginx wrk curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/install-peers.sh installs the peers)"
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
if [[ -z ${PORTCULLIS_BIN:-} ]]; then
  export PORTCULLIS_BIN=$CARGO_TARGET_DIR/release/portcullis
  log "building portcullis (release) in $CARGO_TARGET_DIR"
  cargo build --release -p portcullis >&2
else
  [[ -x $PORTCULLIS_BIN ]] || die "PORTCULLIS_BIN=$PORTCULLIS_BIN is not an executable"
  log "using PORTCULLIS_BIN=$PORTCULLIS_BIN as it is (not rebuilt)"
fi
log "building the xds_bench example (release)"
cargo build --release -p portcullis-tests --example xds_bench >&2

# exec: signals reach the program itself, which stops what it started.
# Progress goes to stderr, the table to stdout.
exec "$CARGO_TARGET_DIR/release/examples/xds_bench"
