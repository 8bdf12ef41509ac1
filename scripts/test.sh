#!/usr/bin/env bash
# The project's test command: install the real peers, build the proxy, run every test.
#
#   bash scripts/test.sh            # from anywhere inside the repository
#
# Extra arguments are passed to `cargo test` (e.g. `bash scripts/test.sh -- --nocapture`).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Non-login shells (CI) may not have rustup's directory on PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [[ -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
  PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\n==> FAILED: %s\n' "$*" >&2; exit 1; }
start=$SECONDS

step "install test peers (scripts/install-peers.sh)"
bash scripts/install-peers.sh || fail "installing test peers"

step "module layering: no module imports one that imports it back"
for src in */src l7/*/src; do
  python3 scripts/module-cycles.py "$src" || fail "module import cycle in $src"
done

command -v cargo >/dev/null 2>&1 || fail "cargo not found on PATH"
step "build: cargo build --release -p portcullis ($(cargo --version))"
cargo build --release -p portcullis || fail "cargo build --release -p portcullis"

export PORTCULLIS_BIN="$repo/target/release/portcullis"
[[ -x $PORTCULLIS_BIN ]] || fail "build finished but $PORTCULLIS_BIN is missing"

step "test: cargo test --workspace --release (PORTCULLIS_BIN=$PORTCULLIS_BIN)"
cargo test --workspace --release "$@" || fail "cargo test --workspace --release"

step "all tests passed in $((SECONDS - start))s"
