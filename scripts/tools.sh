# Tool checks shared by scripts/demo.sh, scripts/test-all.sh and tests/browser/run.sh: each
# installs what is missing. Source this file from the repository root (it reads Cargo.lock).

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() { # packages...
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# The wasm-bindgen version in Cargo.lock, which wasm-bindgen-cli must match exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_rust_target() { # target
  if ! rustup target list --installed | grep -qx "$1"; then
    echo "installing the rust target $1"
    rustup target add "$1"
  fi
}

# wasm-bindgen and wasm-bindgen-test-runner of the Cargo.lock version.
ensure_wasm_bindgen_cli() {
  local version
  version="$(wasm_bindgen_version)"
  if [ -z "$version" ]; then
    echo "error: no wasm-bindgen in Cargo.lock" >&2
    return 1
  fi
  if ! have wasm-bindgen || ! have wasm-bindgen-test-runner \
    || [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ] \
    || [ "$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
    echo "installing wasm-bindgen-cli $version, the version in Cargo.lock (about 2 minutes)"
    cargo install wasm-bindgen-cli --version "$version" --locked
  fi
}

ensure_node() {
  if ! have node || ! have npm; then
    echo "installing Node.js and npm (Debian packages)"
    apt_install nodejs npm
  fi
}
