#!/usr/bin/env bash
# xDS benchmark: update latency (push -> ACK -> enforced), full resync of a large
# node (time and RSS), and throughput while the agent pushes updates. The agent is
# the in-process xDS server of the test harness; the work is done by the
# `xds_bench` example of the portcullis-tests crate (tests/examples/xds_bench/).
# Installs nothing. See bench/README.md.
#
#   bash bench/xds.sh
#   UPDATES=100 ENDPOINTS=100 DURATION=3 bash bench/xds.sh       # a quick run
#   PHASES=resync bash bench/xds.sh
BENCH=xds-bench
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo"

need cargo nginx wrk curl
portcullis_binary
log "building the xds_bench example (release)"
cargo build --release -p portcullis-tests --example xds_bench >&2

# exec: signals reach the program itself, which stops what it started.
# Progress goes to stderr, the table to stdout.
exec "$CARGO_TARGET_DIR/release/examples/xds_bench"
