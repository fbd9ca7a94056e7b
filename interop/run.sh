#!/usr/bin/env bash
# Interop: stock js-libp2p and js-waku nodes against a local mix-relay testnet.
#
#   interop/run.sh
#
# Builds mix-relay (unless MIX_RELAY names a binary), installs interop/js's pinned npm
# packages when node_modules is missing (npm ci, from package-lock.json), starts
# `mix-relay testnet` on 127.0.0.1, waits for its pool file, runs interop/js/test.mjs, stops
# the relays and exits non-zero if any test failed.
#
# Environment:
#   MIX_RELAY      relay binary to use (default: cargo build -p mix-relay; target/debug/mix-relay)
#   RUST_LOG       relay log level (default: info); the log is kept on failure
#   INTEROP_NODES  testnet size (default 5)
#   NODE           node binary (default: the Node 22 that package.json installs, else `node`)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
js="$here/js"
nodes="${INTEROP_NODES:-5}"

step() { printf '[interop] %s\n' "$*"; }

# --- relay binary ---------------------------------------------------------------------------
if [[ -n "${MIX_RELAY:-}" ]]; then
  relay_bin="$MIX_RELAY"
else
  step "building mix-relay (cargo build -p mix-relay)"
  (cd "$root" && cargo build -q -p mix-relay)
  relay_bin="${CARGO_TARGET_DIR:-$root/target}/debug/mix-relay"
fi
[[ -x "$relay_bin" ]] || { echo "[interop] no relay binary at $relay_bin" >&2; exit 2; }

# --- js packages ----------------------------------------------------------------------------
if [[ ! -d "$js/node_modules" ]]; then
  step "installing pinned npm packages (npm ci in interop/js)"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [[ -n "${NODE:-}" ]]; then
  node_bin="$NODE"
elif [[ -x "$js/node_modules/.bin/node" ]] && "$js/node_modules/.bin/node" --version >/dev/null 2>&1; then
  # @waku/* and libp2p 3 need Node >= 22 (Promise.withResolvers, ...); package.json brings one.
  node_bin="$js/node_modules/.bin/node"
else
  node_bin="node"
fi
node_major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
step "node $("$node_bin" --version) ($node_bin)"
if (( node_major < 22 )); then
  step "warning: Node $node_major < 22; the pinned libp2p/@waku packages need Node >= 22"
fi

# --- ports (loopback only) ------------------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_base() { # a base with $1 consecutive free ports
  local want="$1" base p ok
  for _ in $(seq 1 50); do
    base=$(( 20000 + RANDOM % 30000 ))
    ok=1
    for (( p = base; p < base + want; p++ )); do
      if port_busy "$p"; then ok=0; break; fi
    done
    (( ok )) && { echo "$base"; return 0; }
  done
  return 1
}
base_port="$(pick_base $(( 2 * nodes )))"
metrics_port="$(pick_base "$nodes")"

# --- start the testnet ----------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/mix-interop.XXXXXX")"
pool="$work/pool.json"
relay_log="$work/relays.log"
relay_pid=""
status=1

cleanup() {
  if [[ -n "$relay_pid" ]] && kill -0 "$relay_pid" 2>/dev/null; then
    step "stopping relays (pid $relay_pid)"
    kill -TERM "$relay_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$relay_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
  fi
  if (( status == 0 )); then
    rm -rf "$work"
  else
    step "relay log kept: $relay_log (last 40 lines below)"
    tail -n 40 "$relay_log" 2>/dev/null | sed 's/^/[relays] /' || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "starting $nodes relays: tcp/ws ports from $base_port, metrics from $metrics_port (log: $relay_log)"
NO_COLOR=1 RUST_LOG="${RUST_LOG:-info}" "$relay_bin" testnet \
  --nodes "$nodes" --base-port "$base_port" --pool-file "$pool" \
  --metrics-base-port "$metrics_port" >"$relay_log" 2>&1 &
relay_pid=$!

start=$(date +%s)
until [[ -s "$pool" ]]; do # written (tmp + rename) once every node is ready
  if ! kill -0 "$relay_pid" 2>/dev/null; then
    step "relays exited before writing the pool file"
    exit 1
  fi
  if (( $(date +%s) - start > 60 )); then
    step "timed out waiting 60 s for $pool"
    exit 1
  fi
  sleep 0.2
done
step "pool file ready after $(( $(date +%s) - start )) s"

# --- run the js tests -----------------------------------------------------------------------
step "running interop/js/test.mjs"
set +e
(cd "$js" && timeout 300 "$node_bin" test.mjs "$pool" "$metrics_port")
status=$?
set -e
if (( status == 0 )); then step "interop: all tests passed"; else step "interop: FAILED (exit $status)"; fi
exit "$status"
