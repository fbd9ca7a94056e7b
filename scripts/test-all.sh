#!/usr/bin/env bash
# Runs every test suite of the workspace, installing whatever is missing first.
#
#   scripts/test-all.sh            # everything
#   FUZZ_SECONDS=0 scripts/test-all.sh   # skip the fuzz smoke run
#
# Steps: formatting, clippy, native tests (unit, golden vectors, properties, in-process mixnets,
# the CLI, examples, benches in test mode, doc tests), the reliability harness in short mode
# (tests/reliability: load, faults and hostile input against a 5-process testnet, about 2
# minutes; docs/RELIABILITY.md), the no_std builds, the wasm32 tests under wasm-bindgen's
# runner, a short run of every fuzz target, the examples, the interop run with stock js-libp2p
# and js-waku nodes, and the browser suites (tests/browser/run.sh: headless Chromium,
# Playwright, the js-waku adapter, the Vite dapp). Exit 0 only if all pass.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-10}"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-60}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

started=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
# shellcheck source=scripts/tools.sh
. scripts/tools.sh

# --- tools -------------------------------------------------------------------------------
step "checking tools"
ensure_rust_target wasm32-unknown-unknown
ensure_rust_target thumbv7em-none-eabi
ensure_wasm_bindgen_cli
ensure_node
fuzz=yes
if [ "$FUZZ_SECONDS" = 0 ]; then
  fuzz=no
elif ! rustup toolchain list | grep -q '^nightly'; then
  echo "warning: no nightly toolchain: the fuzz smoke run is skipped" >&2
  fuzz=no
elif ! have cargo-fuzz; then
  echo "installing cargo-fuzz (about 1 minute)"
  cargo install cargo-fuzz --locked --quiet
fi

# --- checks ------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all --check
(cd fuzz && cargo fmt --check)

step "cargo clippy (workspace, all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "native tests: unit, golden vectors, properties, examples, benches (test mode)"
cargo test --workspace --all-targets --locked

# .cargo/config.toml builds curve25519-dalek with run-time AVX-512/AVX2/serial dispatch; a CPU
# without IFMA takes another path, so the vectors and properties run on each backend too.
# The default build already runs whichever backend this CPU dispatches to: AVX-512 IFMA if it has
# it, else AVX2 (the simd backend). So the serial backend always runs again, and the AVX2 path
# only on a CPU with IFMA, where the default build does not reach it.
backends=serial
if grep -q avx512ifma /proc/cpuinfo 2>/dev/null; then backends="simd serial"; fi
for backend in $backends; do
  step "golden vectors and properties on curve25519-dalek's $backend backend"
  RUSTFLAGS="--cfg curve25519_dalek_backend=\"$backend\"" CARGO_TARGET_DIR="target/backend-$backend" \
    cargo test -q -p mix-core --tests --locked
done

step "doc tests"
cargo test --workspace --doc --locked

step "reliability harness, short mode: load, faults, hostile input (tests/reliability)"
cargo build -p mix-relay -p mix-reliability --locked
target/debug/mix-reliability --mode short --relay target/debug/mix-relay --out target/reliability/short.md

step "no_std builds (thumbv7em-none-eabi): without alloc, and with it"
cargo build -p mix-core --no-default-features --target thumbv7em-none-eabi --locked
cargo build -p mix-core --target thumbv7em-none-eabi --locked

step "wasm32 tests (wasm-bindgen-test-runner on Node.js)"
cargo test -p mix-core --target wasm32-unknown-unknown --locked

if [ "$fuzz" = yes ]; then
  # A smoke run looks for panics and failed assertions, not for speed: the targets are built
  # once at opt-level 1 without ASan (our crates forbid `unsafe`), in about 5 minutes on 2 cores
  # instead of about 8 for cargo fuzz's optimised ASan build. Long runs: docs/RELIABILITY.md.
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=0
  step "fuzz targets: build (nightly, sanitizer none)"
  (cd fuzz && cargo +nightly fuzz build -s none)
  targets=(decode_packet peel peel_lip183 decode_surb decode_mix_message mix_frames lightpush_request
    lightpush_reply mixnode_entry pool_file rendezvous rendezvous_client webtransport_addr)
  # Two targets at a time (one per core of the CI machine); each is single-threaded.
  smoke() { # target
    local log="target/fuzz-smoke-$1.log"
    if (cd fuzz && cargo +nightly fuzz run -s none "$1" -- -max_total_time="$FUZZ_SECONDS" -max_len=5000) >"$log" 2>&1; then
      echo "fuzz smoke: $1: $(grep -E '^(#[0-9]+ +DONE|Done )' "$log" | tail -1)"
    else
      tail -40 "$log"
      echo "error: fuzz target $1 failed (full log: $log)" >&2
      return 1
    fi
  }
  step "fuzz smoke: ${#targets[@]} targets, ${FUZZ_SECONDS}s each, two at a time"
  mkdir -p target
  for ((i = 0; i < ${#targets[@]}; i += 2)); do
    pids=()
    for t in "${targets[@]:i:2}"; do smoke "$t" & pids+=($!); done
    for pid in "${pids[@]}"; do wait "$pid"; done
  done
  unset CARGO_PROFILE_RELEASE_OPT_LEVEL CARGO_PROFILE_RELEASE_DEBUG
fi

step "example: the in-memory mixnet"
cargo run -q --release -p build-and-peel --locked



step "interop: stock js-libp2p and js-waku nodes against a mix-relay testnet"
MIX_RELAY="$PWD/target/debug/mix-relay" interop/run.sh

step "browser: mix-wasm and the npm package in headless Chromium against mix-relay testnets"
MIX_RELAY="$PWD/target/debug/mix-relay" MIX_DEMO="$PWD/target/debug/mix-demo" tests/browser/run.sh

step "all tests passed in $(( $(date +%s) - started ))s"
