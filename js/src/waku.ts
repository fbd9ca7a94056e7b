/**
 * A js-waku adapter: {@link MixLightPush} has the shape of js-waku's `node.lightPush`
 * (`ILightPush` / `ISender` from `@waku/interfaces`), but sends every message through the mix
 * network with a {@link MixClient}.
 *
 * ```ts
 * import { createEncoder, createRoutingInfo } from '@waku/sdk'   // or @waku/core
 * import { createMixLightPush } from '@mix-rs/mix/waku'
 *
 * const lightPush = createMixLightPush(client)
 * const encoder = createEncoder({ contentTopic, routingInfo })
 * const { successes, failures } = await lightPush.send(encoder, { payload })
 * ```
 *
 * The message is encoded by the encoder itself (`encoder.toWire`), so metaSetter, ephemeral and
 * the version are js-waku's; the pubsub topic is the encoder's.
 *
 * The wire format and the sender hold are the client's: create it with the network's
 * (`MixClient.create({ …, format: 'v039', senderHoldMs })`, or `optionsFromPool(poolFile)`,
 * which reads the pool file's `format`).
 *
 * Runtime dependency: `@libp2p/peer-id` (to return `PeerId`s, as js-waku does). `@waku/*` are
 * used for types only.
 *
 * @module
 */

import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type {
  IEncoder,
  ILightPush,
  IMessage,
  ISendOptions,
  LightPushError,
  LightPushFailure,
  LightPushSDKResult
} from '@waku/interfaces'

import type { LightPushResponse, MixClient, SendOptions } from './client.js'
import { MixError, toMixError } from './errors.js'
import type { MixErrorCode } from './errors.js'
import { LIGHTPUSH_CODEC as LIGHTPUSH_V3 } from './generated.js'

/**
 * The values of `@waku/interfaces`' `LightPushError` enum (0.0.34) that this adapter returns.
 * A string enum, so these are its exact runtime values; the tests check them against the real
 * enum. Kept here so the adapter needs no runtime import of `@waku/interfaces`.
 */
export const WakuLightPushError = {
  GENERIC_FAIL: 'Generic error' as LightPushError.GENERIC_FAIL,
  DECODE_FAILED: 'Failed to decode' as LightPushError.DECODE_FAILED,
  NO_PEER_AVAILABLE: 'No peer available' as LightPushError.NO_PEER_AVAILABLE,
  NO_STREAM_AVAILABLE: 'No stream available' as LightPushError.NO_STREAM_AVAILABLE,
  NO_RESPONSE: 'No response received' as LightPushError.NO_RESPONSE,
  STREAM_ABORTED: 'Stream aborted' as LightPushError.STREAM_ABORTED,
  ENCODE_FAILED: 'Failed to encode' as LightPushError.ENCODE_FAILED,
  EMPTY_PAYLOAD: 'Payload is empty' as LightPushError.EMPTY_PAYLOAD,
  SIZE_TOO_BIG: 'Size is too big' as LightPushError.SIZE_TOO_BIG,
  TOPIC_NOT_CONFIGURED: 'Topic not configured' as LightPushError.TOPIC_NOT_CONFIGURED,
  REMOTE_PEER_REJECTED: 'Remote peer rejected' as LightPushError.REMOTE_PEER_REJECTED
} as const

/**
 * The js-waku error for a {@link MixError} code. One arm per code (unit-tested):
 *
 * | MixError code | LightPushError |
 * | --- | --- |
 * | `PAYLOAD_TOO_LARGE` | `SIZE_TOO_BIG` |
 * | `TIMEOUT` | `NO_RESPONSE` |
 * | `NO_ROUTE`, `UNKNOWN_DESTINATION`, `NOT_CONNECTED` | `NO_PEER_AVAILABLE` |
 * | `SEND_FAILED` | `NO_STREAM_AVAILABLE` |
 * | `INVALID_REPLY`, `BAD_REPLY` | `DECODE_FAILED` |
 * | `CLOSED` | `STREAM_ABORTED` |
 * | `INVALID_OPTIONS`, `INTERNAL`, `NOT_INITIALISED` | `GENERIC_FAIL` |
 */
export function lightPushErrorFor (code: MixErrorCode): LightPushError {
  switch (code) {
    case 'PAYLOAD_TOO_LARGE':
      return WakuLightPushError.SIZE_TOO_BIG
    case 'TIMEOUT':
      return WakuLightPushError.NO_RESPONSE
    case 'NO_ROUTE':
    case 'UNKNOWN_DESTINATION':
    case 'NOT_CONNECTED':
      return WakuLightPushError.NO_PEER_AVAILABLE
    case 'SEND_FAILED':
      return WakuLightPushError.NO_STREAM_AVAILABLE
    case 'INVALID_REPLY':
    case 'BAD_REPLY':
      return WakuLightPushError.DECODE_FAILED
    case 'CLOSED':
      return WakuLightPushError.STREAM_ABORTED
    case 'INVALID_OPTIONS':
    case 'INTERNAL':
    case 'NOT_INITIALISED':
      return WakuLightPushError.GENERIC_FAIL
    default: {
      const never: never = code
      return never
    }
  }
}

/**
 * A js-waku `LightPushFailure` with what the mix path knows besides: the service's status code
 * for a rejection, or the {@link MixError} for a failure on the way.
 */
export interface MixLightPushFailure extends LightPushFailure {
  /** The lightpush v3 status code, when the service node answered with one other than 200. */
  statusCode?: number
  /** The service node's status description, when it gave one. */
  statusDesc?: string
  /** The error, when the request failed before a service node answered. */
  cause?: MixError
}

/** What {@link MixLightPush.send} resolves to: js-waku's `LightPushSDKResult`. */
export interface MixLightPushResult extends LightPushSDKResult {
  failures: MixLightPushFailure[]
  /** The service node's full answer(s), for successes and rejections alike. */
  responses: LightPushResponse[]
}

/** Options of {@link createMixLightPush}: the mix settings for every message. */
export interface MixLightPushOptions {
  /** SURBs per packet. Default 1. */
  surbs?: number
  /** Reply timeout in ms. Default 30000. */
  timeoutMs?: number
  /** Copies on disjoint paths, 1 to 4. Default 1. */
  redundancy?: number
  /** Peer id of the lightpush service node (the third hop); default a random pool node. */
  serviceNode?: string
}

/** MixError codes worth another attempt when `autoRetry` is on. */
const RETRYABLE: ReadonlySet<MixErrorCode> = new Set<MixErrorCode>(['TIMEOUT', 'SEND_FAILED', 'INVALID_REPLY', 'NOT_CONNECTED'])

function safePeerId (id: string | undefined): PeerId | undefined {
  if (id === undefined || id === '') return undefined
  try {
    return peerIdFromString(id)
  } catch {
    return undefined
  }
}

/**
 * js-waku's `ILightPush` over the mix network. Each `send` builds one lightpush v3 request from
 * the encoder's wire bytes and sends it to one service node (the third hop of a fresh path):
 * `successes` holds that node's `PeerId` when it answered 200, otherwise `failures` holds one
 * entry.
 *
 * Differences from js-waku's LightPush:
 * - `autoRetry` defaults to **off** (a retry sends another copy of the message through the
 *   mixnet, and a timeout takes `timeoutMs`); with `autoRetry: true` transient failures
 *   (`TIMEOUT`, `SEND_FAILED`, `INVALID_REPLY`, `NOT_CONNECTED`) are retried in the call, up to
 *   `maxAttempts` (default 3) in all. Consider `redundancy` instead.
 * - `useLegacy` is ignored: only lightpush v3 goes through mix.
 * - Size: the limit is what fits in one Sphinx packet (about 3 KB with one SURB), reported as
 *   `SIZE_TOO_BIG` before anything is sent.
 */
export class MixLightPush implements ILightPush {
  readonly multicodec: string[] = [LIGHTPUSH_V3]
  readonly #client: MixClient
  readonly #options: MixLightPushOptions

  constructor (client: MixClient, options: MixLightPushOptions = {}) {
    if (typeof client !== 'object' || client === null || typeof client.lightpushEncoded !== 'function') {
      throw new MixError('INVALID_OPTIONS', 'MixLightPush needs a MixClient')
    }
    this.#client = client
    this.#options = { ...options }
  }

  /** No-op (js-waku's `ILightPush` lifecycle). */
  start (): void {}

  /** No-op (js-waku's `ILightPush` lifecycle); close the {@link MixClient} to stop. */
  stop (): void {}

  /** Encodes `message` with `encoder` and lightpushes it through the mixnet. Never throws. */
  async send (encoder: IEncoder, message: IMessage, options: ISendOptions = {}): Promise<MixLightPushResult> {
    const result: MixLightPushResult = { successes: [], failures: [], responses: [] }
    const service = this.#options.serviceNode
    const fail = (error: LightPushError, extra: Partial<MixLightPushFailure> = {}): MixLightPushResult => {
      const peerId = extra.peerId ?? safePeerId(service)
      const f: MixLightPushFailure = { error, ...extra }
      if (peerId !== undefined) f.peerId = peerId
      result.failures.push(f)
      return result
    }

    if (!(message?.payload instanceof Uint8Array) || message.payload.length === 0) {
      return fail(WakuLightPushError.EMPTY_PAYLOAD)
    }
    const pubsubTopic = encoder?.pubsubTopic ?? encoder?.routingInfo?.pubsubTopic
    if (typeof pubsubTopic !== 'string' || pubsubTopic === '') {
      return fail(WakuLightPushError.TOPIC_NOT_CONFIGURED)
    }
    let wire: Uint8Array | undefined
    try {
      wire = await encoder.toWire(message)
    } catch {
      wire = undefined
    }
    if (!(wire instanceof Uint8Array)) return fail(WakuLightPushError.ENCODE_FAILED)

    const sendOptions: SendOptions = {}
    if (this.#options.surbs !== undefined) sendOptions.surbs = this.#options.surbs
    if (this.#options.timeoutMs !== undefined) sendOptions.timeoutMs = this.#options.timeoutMs
    if (this.#options.redundancy !== undefined) sendOptions.redundancy = this.#options.redundancy
    if (service !== undefined) sendOptions.destination = service

    const attempts = options.autoRetry === true ? Math.max(1, Math.floor(options.maxAttempts ?? 3)) : 1
    let lastError: MixError | undefined
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const res = await this.#client.lightpushEncoded(pubsubTopic, wire, sendOptions)
        result.responses.push(res)
        const peerId = safePeerId(res.servicePeerId)
        if (res.statusCode === 200) {
          if (peerId !== undefined) result.successes.push(peerId)
          return result
        }
        const extra: Partial<MixLightPushFailure> = { statusCode: res.statusCode }
        if (res.statusDesc !== undefined) extra.statusDesc = res.statusDesc
        if (peerId !== undefined) extra.peerId = peerId
        return fail(WakuLightPushError.REMOTE_PEER_REJECTED, extra)
      } catch (err) {
        lastError = toMixError(err)
        if (!RETRYABLE.has(lastError.code)) break
      }
    }
    const e = lastError ?? new MixError('INTERNAL', 'no attempt was made')
    return fail(lightPushErrorFor(e.code), { cause: e })
  }
}

/** A js-waku–shaped `lightPush` (see {@link MixLightPush}) over `client`. */
export function createMixLightPush (client: MixClient, options: MixLightPushOptions = {}): MixLightPush {
  return new MixLightPush(client, options)
}
