// The js-waku adapter with the real @waku/sdk 0.0.36 encoder, bundled into the page by esbuild,
// in headless Chromium against a running testnet (MIX_POOL_FILE).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { call, openPage } from './support/browser.js'
import type { TestPage } from './support/browser.js'
import { clientOptions, loadPool } from './support/pool.js'
import type { Pool } from './support/pool.js'
import { startHarness } from './support/setup.js'
import type { Harness } from './support/setup.js'

const CONTENT_TOPIC = '/mix-js/1/waku-adapter/proto'

interface Result {
  successes: Array<{ id: string; type: string; hasEquals: boolean }>
  failures: Array<{ error: string; peerId?: string; statusCode?: number; causeCode?: string; causeMaxLen?: number }>
  responses: Array<{ statusCode: number; relayPeerCount?: number; servicePeerId: string }>
  ms: number
  multicodec: string[]
}

describe('js-waku adapter (MixLightPush) in Chromium', { timeout: 300_000 }, () => {
  let pool: Pool
  let h: Harness
  let tp: TestPage
  let shard: number

  before(async () => {
    pool = loadPool()
    shard = pool.shards[0] ?? 0
    h = await startHarness([['waku-page', 'bundled']])
    tp = await openPage(h.browser, `${h.server.url}/pages/waku-page.html`, 'globalThis.mixTest !== undefined')
    await call(tp, 'setup', clientOptions(pool), '/pkg/wasm/mix_wasm_bg.wasm')
  })

  after(async () => {
    if (tp !== undefined) await call(tp, 'close').catch(() => {})
    await tp?.close()
    await h?.close()
  })

  test('@waku/sdk 0.0.36 encoder exposes the pubsub topic the adapter uses', async () => {
    const info = await call<{ pubsubTopic: string; routingPubsubTopic: string; contentTopic: string }>(tp, 'encoderInfo', pool.cluster_id, shard, CONTENT_TOPIC)
    assert.equal(info.pubsubTopic, `/waku/2/rs/${pool.cluster_id}/${shard}`)
    assert.equal(info.routingPubsubTopic, info.pubsubTopic)
    assert.equal(info.contentTopic, CONTENT_TOPIC)
  })

  test('send(encoder, message) → { successes: [PeerId], failures: [] }', async () => {
    const r = await call<Result>(tp, 'send', pool.cluster_id, shard, CONTENT_TOPIC, { text: `js-waku encoder through the mixnet ${Date.now()}` })
    console.log(`    ${r.ms.toFixed(0)} ms: successes=${JSON.stringify(r.successes)} failures=${JSON.stringify(r.failures)}`)
    assert.deepEqual(r.failures, [])
    assert.equal(r.successes.length, 1)
    const s = r.successes[0]!
    assert.ok(pool.nodes.some((n) => n.peer_id === s.id), `${s.id} is a pool node`)
    assert.equal(s.type, 'secp256k1', 'a real @libp2p/peer-id PeerId')
    assert.ok(s.hasEquals)
    assert.equal(r.responses[0]?.statusCode, 200)
    assert.ok((r.responses[0]?.relayPeerCount ?? 0) >= 1)
    assert.deepEqual(r.multicodec, ['/vac/waku/lightpush/3.0.0'])
  })

  test('send() to a chosen service node returns that node as the success', async () => {
    const service = pool.nodes[2]!.peer_id
    const r = await call<Result>(tp, 'send', pool.cluster_id, shard, CONTENT_TOPIC, { text: `to a chosen node ${Date.now()}` }, service)
    assert.deepEqual(r.failures, [])
    assert.deepEqual(r.successes.map((s) => s.id), [service])
  })

  test('an oversized message is a SIZE_TOO_BIG failure, not an exception', async () => {
    const r = await call<Result>(tp, 'send', pool.cluster_id, shard, CONTENT_TOPIC, { size: 8000 })
    console.log(`    failures=${JSON.stringify(r.failures)} (${r.ms.toFixed(0)} ms)`)
    assert.deepEqual(r.successes, [])
    assert.equal(r.failures.length, 1)
    assert.equal(r.failures[0]!.error, 'Size is too big')
    assert.equal(r.failures[0]!.causeCode, 'PAYLOAD_TOO_LARGE')
    assert.equal(typeof r.failures[0]!.causeMaxLen, 'number')
    assert.deepEqual(r.responses, [])
  })

  test('an empty payload is js-waku\'s EMPTY_PAYLOAD failure', async () => {
    const r = await call<Result>(tp, 'send', pool.cluster_id, shard, CONTENT_TOPIC, { size: 0 })
    assert.deepEqual(r.successes, [])
    assert.deepEqual(r.failures.map((f) => f.error), ['Payload is empty'])
  })

  test('a shard the service does not serve is REMOTE_PEER_REJECTED with the status code', async () => {
    const r = await call<Result>(tp, 'send', pool.cluster_id, shard + 7, CONTENT_TOPIC, { text: `wrong shard ${Date.now()}` })
    assert.deepEqual(r.successes, [])
    assert.equal(r.failures.length, 1)
    assert.equal(r.failures[0]!.error, 'Remote peer rejected')
    assert.equal(r.failures[0]!.statusCode, 421)
    assert.ok(pool.nodes.some((n) => n.peer_id === r.failures[0]!.peerId), 'the failure names the service node')
  })
})
