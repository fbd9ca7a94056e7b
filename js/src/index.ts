/**
 * `@mix-rs/mix`: send libp2p mix (Sphinx) messages and Waku lightpush requests through a mix
 * network from a browser or a Web Worker.
 *
 * ```ts
 * import { initAsync, MixClient } from '@mix-rs/mix'
 * await initAsync()
 * // The pool is found through Waku rendezvous at the gateway (or pass `mixnodes`).
 * const client = await MixClient.create({ bootstrap: [gatewayWsAddr] })
 * const res = await client.lightpush({ message: { payload, contentTopic: '/app/1/chat/proto' } })
 * ```
 *
 * The js-waku adapter is in `@mix-rs/mix/waku`.
 *
 * @module
 */

export { initAsync, isInitialised } from './wasm.js'
export type { WasmSource } from './wasm.js'
export { MIX_FORMATS, MixClient, normaliseMixNode, optionsFromPool } from './client.js'
export type {
  LightPushRequest,
  LightPushResponse,
  LightPushTrace,
  LogLevel,
  MixClientEventMap,
  MixClientEventType,
  MixClientOptions,
  MixFormat,
  MixNodeInfo,
  MixStats,
  PoolEventDetail,
  PoolFile,
  PoolFileNode,
  PoolRemovalReason,
  SendOptions,
  WakuMessage
} from './client.js'
export { MixError, MIX_ERROR_CODES, isMixError, toMixError } from './errors.js'
export type { MixErrorCode, MixErrorOptions } from './errors.js'
// LIGHTPUSH_CODEC: the lightpush v3 protocol id, the codec to use with MixClient.send for raw
// lightpush (from the Rust definition).
export { LIGHTPUSH_CODEC } from './generated.js'
