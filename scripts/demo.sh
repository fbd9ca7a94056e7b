#!/usr/bin/env bash
# The README's first command: builds what the demo needs, starts a local mixnet of relays on
# 127.0.0.1 and serves a page (http://127.0.0.1:8080/) that sends Waku lightpush messages
# through it from the browser.
#
#   scripts/demo.sh                        # embedded defaults
#   scripts/demo.sh --port 9000 --nodes 7  # flags go to mix-demo (see --help)
#
# Installs what is missing first: the wasm32 target, wasm-bindgen-cli of the Cargo.lock
# version, Node.js and npm (Debian packages), the npm package's pinned tools (npm ci in js/).
# A first run on a fresh 2-core machine takes about 8 minutes (compiling); later runs start in
# seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

started=$(date +%s)
step() { printf '\n[demo %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
# shellcheck source=scripts/tools.sh
. scripts/tools.sh

step "1/5 checking tools"
ensure_rust_target wasm32-unknown-unknown
ensure_wasm_bindgen_cli
ensure_node
echo "rustc $(rustc --version | awk '{print $2}'), wasm-bindgen $(wasm_bindgen_version), node $(node --version), npm $(npm --version)"

if [ ! -d js/node_modules ]; then
  step "2/5 installing the npm package's pinned tools (npm ci in js/: TypeScript, binaryen's wasm-opt)"
  (cd js && npm ci --no-audit --no-fund --loglevel=error)
else
  step "2/5 npm tools already installed in js/node_modules"
fi

step "3/5 compiling the browser client to WebAssembly (mix-wasm; a few minutes the first time)"
mix-wasm/build.sh full

step "4/5 compiling the npm package's TypeScript (js/dist)"
(cd js && npm run --silent build)

step "5/5 compiling the relays and the demo server (cargo build --release -p mix-demo)"
cargo build --release --locked -p mix-demo

step "starting the demo"
exec "${CARGO_TARGET_DIR:-$root/target}/release/mix-demo" --js-dir "$root/js" "$@"
