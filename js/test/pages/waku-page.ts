// Page side of the js-waku adapter test: the package and the real @waku/sdk encoder, bundled
// together by esbuild (which does not rewrite `new URL(…, import.meta.url)`, so the wasm URL
// is passed to initAsync explicitly).
import { createEncoder, utils } from '@waku/sdk'
import { initAsync, MixClient } from '@mix-rs/mix'
import type { MixClientOptions } from '@mix-rs/mix'
import { createMixLightPush, MixLightPush } from '@mix-rs/mix/waku'
import type { MixLightPushResult } from '@mix-rs/mix/waku'

let client: MixClient | undefined

function summary (r: MixLightPushResult) {
  return {
    successes: r.successes.map((p) => ({ id: p.toString(), type: p.type, hasEquals: typeof p.equals === 'function' })),
    failures: r.failures.map((f) => ({
      error: f.error,
      peerId: f.peerId?.toString(),
      statusCode: f.statusCode,
      causeCode: f.cause?.code,
      causeMaxLen: f.cause?.maxLen
    })),
    responses: r.responses
  }
}

const api = {
  async setup (options: MixClientOptions, wasmUrl: string) {
    await initAsync(wasmUrl)
    client = await MixClient.create(options)
    return { peerId: client.peerId }
  },

  /** The encoder's topics, as @waku/sdk 0.0.36 exposes them. */
  encoderInfo (clusterId: number, shardId: number, contentTopic: string) {
    const routingInfo = utils.createRoutingInfo({ clusterId }, { shardId })
    const encoder = createEncoder({ contentTopic, routingInfo })
    return { pubsubTopic: encoder.pubsubTopic, routingPubsubTopic: encoder.routingInfo.pubsubTopic, contentTopic: encoder.contentTopic }
  },

  async send (clusterId: number, shardId: number, contentTopic: string, payload: { text?: string; size?: number }, serviceNode?: string) {
    if (client === undefined) throw new Error('setup first')
    const routingInfo = utils.createRoutingInfo({ clusterId }, { shardId })
    const encoder = createEncoder({ contentTopic, routingInfo })
    const lightPush: MixLightPush = createMixLightPush(client, serviceNode !== undefined ? { serviceNode } : {})
    const bytes = payload.text !== undefined ? new TextEncoder().encode(payload.text) : new Uint8Array(payload.size ?? 0).fill(0x61)
    const t0 = performance.now()
    const r = await lightPush.send(encoder, { payload: bytes })
    return { ...summary(r), ms: performance.now() - t0, multicodec: lightPush.multicodec }
  },

  async close () {
    await client?.close()
  }
}

;(globalThis as unknown as { mixTest: typeof api }).mixTest = api
