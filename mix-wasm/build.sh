#!/usr/bin/env bash
# Builds the browser packages' wasm into js/:
#   js/wasm/       the full client (WasmMixClient + SphinxClient), what the npm package ships
#   js/wasm-core/  the core-only build (SphinxClient, no libp2p node), for size comparison
#
#   mix-wasm/build.sh            both
#   mix-wasm/build.sh full|core  one
#
# Needs the wasm32-unknown-unknown target, wasm-bindgen-cli of exactly the Cargo.lock version
# (tests/browser/run.sh installs both) and, for the size optimisation, binaryen's wasm-opt from
# js/'s pinned npm packages (`npm ci` in js/). Debian's binaryen 108 is not used: after -Oz it
# points wasm-bindgen's externref table export at the fixed function table, and the module
# fails to load ("failed to grow table").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
profile=wasm-release
want="${1:-all}"

step() { printf '[mix-wasm] %s\n' "$*"; }
wasm_opt="$root/js/node_modules/.bin/wasm-opt"

# shellcheck source=scripts/tools.sh
. "$root/scripts/tools.sh"
lock_version="$(cd "$root" && wasm_bindgen_version)"
have_version="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" || true
if [[ "$have_version" != "$lock_version" ]]; then
  echo "[mix-wasm] wasm-bindgen-cli $lock_version is needed (found: ${have_version:-none}):" >&2
  echo "           cargo install wasm-bindgen-cli --version $lock_version --locked" >&2
  exit 2
fi

build() { # name features out
  local name="$1" features="$2" out="$3"
  step "cargo build -p mix-wasm ($name) --target wasm32-unknown-unknown --profile $profile"
  # shellcheck disable=SC2086
  (cd "$root" && cargo build -q -p mix-wasm --lib --target wasm32-unknown-unknown --profile "$profile" $features)
  rm -rf "$out"
  wasm-bindgen --target web --weak-refs --out-dir "$out" \
    "$target_dir/wasm32-unknown-unknown/$profile/mix_wasm.wasm"
  if [ -x "$wasm_opt" ]; then
    "$wasm_opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$out/mix_wasm_bg.wasm" -o "$out/mix_wasm_bg.wasm"
  else
    step "no $wasm_opt (npm ci in js/ installs it): $name left unoptimised"
  fi
  local raw gz
  raw=$(stat -c %s "$out/mix_wasm_bg.wasm")
  gz=$(gzip -9 -c "$out/mix_wasm_bg.wasm" | wc -c)
  step "$name: $out/mix_wasm_bg.wasm $raw bytes raw, $gz bytes gzip -9"
}

case "$want" in
  all) build core "--no-default-features" "$root/js/wasm-core"; build full "" "$root/js/wasm" ;;
  core) build core "--no-default-features" "$root/js/wasm-core" ;;
  full) build full "" "$root/js/wasm" ;;
  *) echo "usage: $0 [all|full|core]" >&2; exit 2 ;;
esac
