// Generated from the Rust sources of mix-wasm and mix-waku by
// `MIX_BLESS=1 cargo test -p mix-wasm --lib js_constants`. Do not edit: the test
// `js_constants::generated_ts_is_current` fails when this file and the Rust code disagree.

/**
 * The error codes the wasm module throws (`WasmMixError.code`), in a stable order.
 *
 * | code | meaning |
 * | --- | --- |
 * | `INVALID_OPTIONS` | An option or argument is missing, of the wrong type, out of range or malformed. |
 * | `PAYLOAD_TOO_LARGE` | The message does not fit in one packet with this codec and SURB count; `maxLen` says what fits. |
 * | `NO_ROUTE` | Too few mix nodes for a path. |
 * | `UNKNOWN_DESTINATION` | The destination is not a mix node of the pool. |
 * | `TIMEOUT` | No reply within the timeout. |
 * | `NOT_CONNECTED` | No gateway relay could be reached, or it refused a circuit reservation. |
 * | `SEND_FAILED` | Every copy of the request failed at its first hop. |
 * | `INVALID_REPLY` | Every reply came back unopenable (tampered on the way). |
 * | `BAD_REPLY` | The reply opened but is not the expected response (e.g. not a lightpush response). |
 * | `CLOSED` | The client was closed. |
 * | `INTERNAL` | A bug or an unexpected environment (no randomness source, ...). |
 */
export const WASM_ERROR_CODES = Object.freeze([
  'INVALID_OPTIONS',
  'PAYLOAD_TOO_LARGE',
  'NO_ROUTE',
  'UNKNOWN_DESTINATION',
  'TIMEOUT',
  'NOT_CONNECTED',
  'SEND_FAILED',
  'INVALID_REPLY',
  'BAD_REPLY',
  'CLOSED',
  'INTERNAL'
] as const)

/** One of {@link WASM_ERROR_CODES}. */
export type WasmErrorCode = typeof WASM_ERROR_CODES[number]

/** The Waku cluster id a client uses when none is given. */
export const DEFAULT_CLUSTER_ID = 2

/** The shard of the pubsub topic lightpush uses when none is given. */
export const DEFAULT_SHARD = 0

/** The prefix of a static-sharding pubsub topic, `/waku/2/rs/<cluster>/<shard>`. */
export const STATIC_SHARDING_PREFIX = '/waku/2/rs/'

/** The lightpush v3 protocol id: the codec of lightpush requests through the mixnet. */
export const LIGHTPUSH_CODEC = '/vac/waku/lightpush/3.0.0'
