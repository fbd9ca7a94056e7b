#!/usr/bin/env bash
# Every browser suite, in real headless Chromium against real relays:
#   1. mix-wasm's wasm_bindgen_test suite (mix-wasm/tests/browser.rs): connect through a gateway
#      relay, lightpush through 3 hops with the reply over the circuit address, the payload cap,
#      timeouts, bad options, a tampering exit, a client given only node 0's address that finds
#      the pool through Waku rendezvous; both wire formats: a `format: 'v039'` client delivers
#      on a v039 testnet, a client of the default LIP-183 format gets no reply there;
#   2. the npm package (js/) built from mix-wasm/build.sh, tested through Playwright: the client,
#      typed errors, a Web Worker, the js-waku adapter with the real @waku packages, the
#      example dapp (examples/dapp) built by Vite and driven by a click, and the README's demo
#      page (mix-demo with its own testnet: type, Send, status and three hops; a screenshot in
#      js/test-results/demo-page.png), and WebTransport (QUIC on): a client given only a relay's
#      certhash multiaddr lightpushes over WebTransport, addresses from before a certificate
#      rotation still dial, a failing WebTransport dial falls back to WebSocket.
#
#   tests/browser/run.sh
#
# Starts four `mix-relay testnet`s on 127.0.0.1 (an honest one, one whose exits tamper with
# their replies, one with WebTransport and fast certificate rotation, all in the default LIP-183
# wire format, and an honest one in the v0.39 format) and stops them on exit; installs what is missing (the wasm32 target,
# wasm-bindgen-cli of the Cargo.lock version, Debian's chromium + chromium-driver, the pinned
# npm packages, binaryen's wasm-opt among them). Exit 0 only if every suite passed.
#
# Environment: MIX_RELAY (relay binary; default: cargo build -p mix-relay), MIX_DEMO (likewise,
# mix-demo), KEEP_LOGS=1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-60}"
started=$(date +%s)
step() { printf '\n[browser %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
# shellcheck source=scripts/tools.sh
. scripts/tools.sh

# --- tools ------------------------------------------------------------------------------------
step "checking tools"
ensure_rust_target wasm32-unknown-unknown
ensure_wasm_bindgen_cli
ensure_node
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing ${missing[*]} (apt)"
  apt_install "${missing[@]}"
fi
export CHROMEDRIVER=/usr/bin/chromedriver

# --- relays -----------------------------------------------------------------------------------
if [ -n "${MIX_RELAY:-}" ]; then
  relay_bin="$MIX_RELAY"
else
  step "building mix-relay"
  cargo build -q -p mix-relay --locked
  relay_bin="${CARGO_TARGET_DIR:-$root/target}/debug/mix-relay"
fi
if [ -z "${MIX_DEMO:-}" ]; then
  step "building mix-demo (the README's demo server; js/test/demo.test.ts runs it)"
  cargo build -q -p mix-demo --locked
  export MIX_DEMO="${CARGO_TARGET_DIR:-$root/target}/debug/mix-demo"
fi
work="$(mktemp -d)"
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$rc" != 0 ] || [ -n "${KEEP_LOGS:-}" ]; then
    echo "[browser] relay logs kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

start_testnet() { # name nodes extra-args...
  local name="$1" nodes="$2"; shift 2
  RUST_LOG="${RUST_LOG:-info}" "$relay_bin" testnet --nodes "$nodes" --base-port 0 \
    --pool-file "$work/$name.json" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
step "starting four testnets on 127.0.0.1 (5 honest relays; 4 whose exits tamper with replies; 5 that also speak WebTransport; 4 honest relays in the v0.39 wire format)"
start_testnet honest 5
start_testnet hostile 4 --tamper-replies
start_testnet v039 4 --mix-format v039
# Relays that also listen on libp2p WebTransport and rotate their certificates every
# $wt_rotate s (the pool file is rewritten after each rotation): js/test/webtransport.test.ts.
wt_rotate=15
start_testnet webtransport 5 --webtransport --webtransport-rotate-secs "$wt_rotate"
for _ in $(seq 1 120); do
  [ -s "$work/honest.json" ] && [ -s "$work/hostile.json" ] && [ -s "$work/webtransport.json" ] \
    && [ -s "$work/v039.json" ] && break
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || { tail -20 "$work"/*.log >&2; exit 1; }; done
  sleep 0.5
done
[ -s "$work/honest.json" ] && [ -s "$work/hostile.json" ] && [ -s "$work/webtransport.json" ] \
  && [ -s "$work/v039.json" ] || { echo "[browser] testnets not ready" >&2; exit 1; }

# --- 1. wasm-bindgen tests in Chromium --------------------------------------------------------
step "mix-wasm: wasm_bindgen_test suite in headless Chromium"
MIX_POOL_JSON="$(cat "$work/honest.json")" MIX_HOSTILE_POOL_JSON="$(cat "$work/hostile.json")" \
  MIX_V039_POOL_JSON="$(cat "$work/v039.json")" cargo test -p mix-wasm --target wasm32-unknown-unknown --test browser --locked

# --- 2. the npm package through Playwright ---------------------------------------------------
for dir in js examples/dapp; do
  if [ ! -d "$dir/node_modules" ]; then
    step "installing pinned npm packages in $dir (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
step "building the wasm for the npm package (mix-wasm/build.sh: full and core-only)"
mix-wasm/build.sh
step "js/: Playwright tests of the built package (client, errors, Web Worker, js-waku adapter, Vite dapp, demo page)"
(cd js && npm run --silent typecheck && MIX_POOL_FILE="$work/honest.json" \
  MIX_WT_POOL_FILE="$work/webtransport.json" MIX_WT_ROTATE_SECS="$wt_rotate" npm test)

step "all browser suites passed"
