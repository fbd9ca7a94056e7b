// Browser tests of the built package (js/dist + js/wasm, loaded unbundled) in headless
// Chromium against a running testnet (MIX_POOL_FILE).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'

import { call, openPage } from './support/browser.js'
import type { TestPage } from './support/browser.js'
import { clientOptions, loadPool, pubsubTopic, wsAddr } from './support/pool.js'
import type { Pool } from './support/pool.js'
import { startHarness } from './support/setup.js'
import type { Harness } from './support/setup.js'

const CONTENT_TOPIC = '/mix-js/1/test/proto'
const LIGHTPUSH = '/vac/waku/lightpush/3.0.0'

interface ErrorInfo { thrown: true; isMixError: boolean; isError: boolean; name: string; code?: string; message: string; maxLen?: number; hasStack: boolean }
interface Trace { hops: string[]; replyHops: string[]; buildMs: number; mixnetMs: number; openMs: number }
interface Response { requestId: string; statusCode: number; statusDesc?: string; relayPeerCount?: number; servicePeerId: string; trace?: Trace }
interface Created { id: number; createMs: number; peerId: string; circuitAddress: string; clusterId: number; defaultPubsubTopic: string; events: Array<{ type: string; detail: Record<string, unknown> }> }
interface PoolDetail { size: number; added: string[]; removed: Array<{ peerId: string; reason: string }>; belowMinimum: boolean }

function isError (v: unknown): v is ErrorInfo {
  return typeof v === 'object' && v !== null && (v as ErrorInfo).thrown === true
}

function assertMixError (v: unknown, code: string, what: string): ErrorInfo {
  assert.ok(isError(v), `${what}: expected a MixError ${code}, got ${JSON.stringify(v)}`)
  assert.equal(v.code, code, `${what}: ${v.message}`)
  assert.ok(v.isMixError, `${what}: instanceof MixError`)
  assert.ok(v.isError, `${what}: instanceof Error`)
  assert.equal(v.name, 'MixError', what)
  assert.ok(v.hasStack, `${what}: has a stack`)
  return v
}

function assertOk<T> (v: T | ErrorInfo, what: string): T {
  if (isError(v)) assert.fail(`${what}: ${v.name} ${v.code ?? ''}: ${v.message}`)
  return v
}

async function closedPort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address() as AddressInfo
  await new Promise<void>((resolve) => srv.close(() => resolve()))
  return port
}

const nonce = (): string => `${Date.now()}-${Math.random().toString(36).slice(2)}`

describe('MixClient in Chromium', { timeout: 600_000 }, () => {
  let pool: Pool
  let h: Harness
  let tp: TestPage
  let id = 0
  let created: Created

  before(async () => {
    pool = loadPool()
    h = await startHarness([['harness', 'native'], ['worker', 'native']])
    tp = await openPage(h.browser, `${h.server.url}/pages/harness.html`, 'globalThis.mixTest !== undefined')
  })

  after(async () => {
    await tp?.close()
    await h?.close()
  })

  test('using MixClient before initAsync() throws NOT_INITIALISED, naming initAsync', async () => {
    const r = await call<{ initialised: boolean; create: unknown; createBad: unknown }>(tp, 'beforeInit', clientOptions(pool))
    assert.equal(r.initialised, false)
    const e = assertMixError(r.create, 'NOT_INITIALISED', 'create before init')
    assert.match(e.message, /initAsync\(\)/)
    assertMixError(r.createBad, 'INVALID_OPTIONS', 'bad options before init')
    assert.equal(h.server.hits.get('/pkg/wasm/mix_wasm_bg.wasm') ?? 0, 0, 'nothing loaded the wasm yet')
  })

  test('initAsync() loads the wasm once and is idempotent', async () => {
    const r = await call<{ samePromise: boolean; initialised: boolean }>(tp, 'init')
    assert.deepEqual(r, { samePromise: true, initialised: true })
    const again = await call<{ samePromise: boolean; initialised: boolean }>(tp, 'init')
    assert.equal(again.initialised, true)
    assert.equal(h.server.hits.get('/pkg/wasm/mix_wasm_bg.wasm'), 1, 'the default wasm URL (next to mix_wasm.js) is fetched once')
  })

  test('create: peerId, circuitAddress and a reservation event', async () => {
    const gateway = pool.nodes[0]!.peer_id
    created = await call<Created>(tp, 'create', clientOptions(pool))
    id = created.id
    console.log(`    created in ${created.createMs.toFixed(0)} ms: ${created.peerId}`)
    console.log(`    circuit address ${created.circuitAddress}`)
    console.log(`    events: ${created.events.map((e) => e.type).join(', ')}`)
    assert.match(created.peerId, /^(16Uiu2|12D3Koo|Qm)[1-9A-HJ-NP-Za-km-z]+$/)
    assert.ok(created.circuitAddress.includes(`/p2p/${gateway}/p2p-circuit/p2p/${created.peerId}`), created.circuitAddress)
    assert.match(created.circuitAddress, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//, 'SURBs carry the gateway\'s TCP address (mix nodes dial it over TCP)')
    assert.equal(created.clusterId, pool.cluster_id)
    assert.equal(created.defaultPubsubTopic, `/waku/2/rs/${pool.cluster_id}/0`)
    const resv = created.events.find((e) => e.type === 'reservation')
    assert.ok(resv !== undefined, `a 'reservation' event (got ${created.events.map((e) => e.type).join(', ') || 'none'})`)
    assert.equal(resv.detail.relay, gateway)
    assert.equal(resv.detail.address, created.circuitAddress)
    assert.ok(!('type' in resv.detail), 'detail carries the payload only')
    const poolEv = created.events.find((e) => e.type === 'pool')
    assert.ok(poolEv !== undefined, 'a \'pool\' event reports the fixed pool')
    assert.equal((poolEv.detail as unknown as PoolDetail).size, pool.nodes.length)
  })

  test('lightpush through the mixnet: 200 and relayPeerCount ≥ 1', async () => {
    const r = await call<{ result: Response | ErrorInfo; ms: number }>(tp, 'lightpush', id, { contentTopic: CONTENT_TOPIC, payload: { text: `hello through the mixnet ${nonce()}` } })
    const res = assertOk(r.result, 'lightpush')
    console.log(`    ${r.ms.toFixed(0)} ms: ${JSON.stringify(res)}`)
    assert.equal(res.statusCode, 200, res.statusDesc)
    assert.ok((res.relayPeerCount ?? 0) >= 1, `relayPeerCount ${res.relayPeerCount}`)
    assert.ok(res.requestId.length > 0)
    assert.ok(pool.nodes.some((n) => n.peer_id === res.servicePeerId), `service ${res.servicePeerId} is a pool node`)
    // The trace: three distinct pool nodes out, ending at the service; two back, not the exit.
    const t = res.trace
    assert.ok(t !== undefined, 'a trace')
    const inPool = (p: string): boolean => pool.nodes.some((n) => n.peer_id === p)
    assert.equal(t.hops.length, 3)
    assert.equal(new Set(t.hops).size, 3, `distinct hops ${t.hops.join(' ')}`)
    assert.ok(t.hops.every(inPool), 'every hop is a pool node')
    assert.equal(t.hops[2], res.servicePeerId, 'the third hop is the service node')
    assert.equal(t.replyHops.length, 2)
    assert.ok(t.replyHops.every(inPool) && !t.replyHops.includes(res.servicePeerId), `reply hops ${t.replyHops.join(' ')}`)
    for (const phase of [t.buildMs, t.mixnetMs, t.openMs]) assert.ok(Number.isFinite(phase) && phase >= 0, `phase ${phase}`)
    assert.ok(t.mixnetMs <= r.ms && t.buildMs + t.mixnetMs + t.openMs <= r.ms + 1, `phases ${JSON.stringify(t)} within the ${r.ms} ms call`)
  })

  test('lightpush to a chosen service node, with an explicit pubsub topic', async () => {
    const service = pool.nodes[3]!.peer_id
    const r = await call<{ result: Response | ErrorInfo }>(tp, 'lightpush', id, { pubsubTopic: pubsubTopic(pool), serviceNode: service, contentTopic: CONTENT_TOPIC, payload: { text: `to node 3 ${nonce()}` } })
    const res = assertOk(r.result, 'lightpush to node 3')
    assert.equal(res.statusCode, 200, res.statusDesc)
    assert.equal(res.servicePeerId, service)
  })

  test('lightpush on an unserved shard is answered, not thrown (421)', async () => {
    const r = await call<{ result: Response | ErrorInfo }>(tp, 'lightpush', id, { pubsubTopic: `/waku/2/rs/${pool.cluster_id}/7`, contentTopic: CONTENT_TOPIC, payload: { text: `wrong shard ${nonce()}` } })
    const res = assertOk(r.result, 'lightpush on shard 7')
    assert.equal(res.statusCode, 421, JSON.stringify(res))
  })

  test('raw send() of a hand-encoded lightpush v3 request', async () => {
    const r = await call<{ requestId: string; result: { isUint8Array: boolean; len: number; decoded: { requestId?: string; statusCode?: number; relayPeerCount?: number } } | ErrorInfo }>(
      tp, 'sendRawLightpush', id, pubsubTopic(pool), CONTENT_TOPIC, `raw send ${nonce()}`)
    const res = assertOk(r.result, 'raw send')
    assert.ok(res.isUint8Array)
    assert.equal(res.decoded.requestId, r.requestId)
    assert.equal(res.decoded.statusCode, 200)
    assert.ok((res.decoded.relayPeerCount ?? 0) >= 1)
  })

  test('PAYLOAD_TOO_LARGE with maxLen, thrown before anything is sent', async () => {
    const max = assertOk(await call<number | ErrorInfo>(tp, 'maxLightpushPayload', id, { contentTopic: CONTENT_TOPIC }), 'maxLightpushPayload')
    console.log(`    maxLightpushPayload = ${max}`)
    assert.ok(max > 2000 && max < 4000, `plausible (≈3.1 KB with one SURB): ${max}`)
    const r = await call<{ result: unknown; ms: number; sentBefore: number; sentAfter: number }>(tp, 'oversized', id, CONTENT_TOPIC, 64 * 1024)
    const e = assertMixError(r.result, 'PAYLOAD_TOO_LARGE', '64 KiB lightpush')
    assert.equal(e.maxLen, max, 'maxLen is the payload limit maxLightpushPayload reports')
    assert.equal(r.sentAfter, r.sentBefore, 'nothing was sent')
    assert.ok(r.ms < 2000, `failed fast (${r.ms.toFixed(0)} ms)`)

    const maxBody = assertOk(await call<number | ErrorInfo>(tp, 'maxMessageLen', id, LIGHTPUSH), 'maxMessageLen')
    const s = await call<{ result: unknown; sentBefore: number; sentAfter: number }>(tp, 'sendBytes', id, LIGHTPUSH, maxBody + 1)
    const e2 = assertMixError(s.result, 'PAYLOAD_TOO_LARGE', 'send of maxMessageLen+1')
    assert.equal(e2.maxLen, maxBody)
    assert.equal(s.sentAfter, s.sentBefore, 'nothing was sent')
  })

  test('maxMessageLen / maxLightpushPayload shrink with more SURBs', async () => {
    const lens = []
    for (const surbs of [0, 1, 2, 5]) {
      lens.push(assertOk(await call<number | ErrorInfo>(tp, 'maxMessageLen', id, LIGHTPUSH, surbs), `maxMessageLen surbs=${surbs}`))
    }
    console.log(`    maxMessageLen(lightpush, 0/1/2/5 SURBs) = ${lens.join(' / ')}`)
    for (let i = 1; i < lens.length; i++) assert.ok(lens[i]! < lens[i - 1]!, JSON.stringify(lens))
    const p1 = assertOk(await call<number | ErrorInfo>(tp, 'maxLightpushPayload', id, { contentTopic: CONTENT_TOPIC, surbs: 1 }), 'p1')
    const p2 = assertOk(await call<number | ErrorInfo>(tp, 'maxLightpushPayload', id, { contentTopic: CONTENT_TOPIC, surbs: 2 }), 'p2')
    assert.ok(p2 < p1 && p1 < lens[1]!, `${p2} < ${p1} < ${lens[1]}`)
  })

  test('maxLightpushPayload is exact: maxLen bytes get 200, maxLen+1 are refused', async () => {
    const max = assertOk(await call<number | ErrorInfo>(tp, 'maxLightpushPayload', id, { contentTopic: CONTENT_TOPIC }), 'maxLightpushPayload')
    const fits = await call<{ result: Response | ErrorInfo; ms: number; payloadLen: number }>(tp, 'lightpush', id, { contentTopic: CONTENT_TOPIC, payload: { size: max } })
    const res = assertOk(fits.result, `lightpush of ${max} bytes`)
    assert.equal(fits.payloadLen, max)
    assert.equal(res.statusCode, 200, JSON.stringify(res))
    const over = await call<{ result: unknown }>(tp, 'lightpush', id, { contentTopic: CONTENT_TOPIC, payload: { size: max + 1 } })
    const e = assertMixError(over.result, 'PAYLOAD_TOO_LARGE', `lightpush of ${max + 1} bytes`)
    assert.equal(e.maxLen, max)
  })

  test('bad arguments are INVALID_OPTIONS', async () => {
    const r = await call<Record<string, unknown>>(tp, 'badCalls', id)
    for (const [what, v] of Object.entries(r)) assertMixError(v, 'INVALID_OPTIONS', what)
  })

  test('bad client options are INVALID_OPTIONS', async () => {
    const good = clientOptions(pool)
    const node0 = pool.nodes[0]!
    const cases: Record<string, Record<string, unknown>> = {
      'no bootstrap': { ...good, bootstrap: undefined },
      'empty bootstrap': { ...good, bootstrap: [] },
      'bootstrap not strings': { ...good, bootstrap: [42] },
      'mixnodes not an array': { ...good, mixnodes: 'nodes' },
      'mix key too short': { ...good, mixnodes: [{ ...node0, mix_public_key: 'abcd' }] },
      'mix key not hex': { ...good, mixnodes: [{ ...node0, mix_public_key: 'z'.repeat(64) }] },
      'node without peer id': { ...good, mixnodes: [{ multiaddrs: node0.multiaddrs, mixPublicKey: node0.mix_public_key }] },
      'multiaddrs not an array': { ...good, mixnodes: [{ ...node0, multiaddrs: node0.multiaddrs[0] }] },
      'bad log level': { ...good, logLevel: 'loud' },
      'negative connect timeout': { ...good, connectTimeoutMs: -1 },
      'fractional cluster id': { ...good, clusterId: 1.5 },
      // Checked by the wasm layer:
      'bootstrap not a multiaddr': { ...good, bootstrap: ['not a multiaddr'] },
      'mix node multiaddr garbage': { ...good, mixnodes: [{ ...node0, multiaddrs: ['/ip4/999.1.1.1/tcp/x'] }, ...pool.nodes.slice(1)] },
      'peer id garbage': { ...good, mixnodes: [{ ...node0, peer_id: 'not-a-peer-id' }, ...pool.nodes.slice(1)] }
    }
    for (const [what, opts] of Object.entries(cases)) {
      assertMixError(await call<unknown>(tp, 'tryCreate', opts), 'INVALID_OPTIONS', what)
    }
  })

  test('options the wasm layer rejects: unknown destination, too many SURBs', async () => {
    const r = await call<Record<string, unknown>>(tp, 'wasmRejects', id, pubsubTopic(pool), CONTENT_TOPIC)
    assertMixError(r.unknownDestination, 'UNKNOWN_DESTINATION', 'service node not in the pool')
    assertMixError(r.garbageDestination, 'INVALID_OPTIONS', 'service node not a peer id')
    assertMixError(r.tooManySurbs, 'INVALID_OPTIONS', '99 SURBs')
  })

  test('no reachable gateway is NOT_CONNECTED within connectTimeoutMs', async () => {
    const port = await closedPort()
    const gw = pool.nodes[0]!.peer_id
    const t0 = Date.now()
    const r = await call<unknown>(tp, 'tryCreate', clientOptions(pool, { bootstrap: [`/ip4/127.0.0.1/tcp/${port}/ws/p2p/${gw}`], connectTimeoutMs: 3000 }))
    assertMixError(r, 'NOT_CONNECTED', 'closed port')
    assert.ok(Date.now() - t0 < 15_000, 'gave up within the connect timeout (plus slack)')
  })

  test('a second gateway in bootstrap is used when the first is down', async () => {
    const port = await closedPort()
    const gw0 = pool.nodes[0]!.peer_id
    const r = await call<Created>(tp, 'create', clientOptions(pool, { bootstrap: [`/ip4/127.0.0.1/tcp/${port}/ws/p2p/${gw0}`, wsAddr(pool.nodes[1]!)], connectTimeoutMs: 5000 }))
    assert.ok(r.circuitAddress.includes(`/p2p/${pool.nodes[1]!.peer_id}/p2p-circuit/`), r.circuitAddress)
    const lp = await call<{ result: Response | ErrorInfo }>(tp, 'lightpush', r.id, { contentTopic: CONTENT_TOPIC, payload: { text: `via gateway 1 ${nonce()}` } })
    assert.equal(assertOk(lp.result, 'lightpush via gateway 1').statusCode, 200)
    await call(tp, 'close', r.id)
  })

  test('send() with surbs: 0 resolves to an empty reply once the packet is out, without waiting for a timeout', async () => {
    const r = await call<{ result: number | ErrorInfo; ms: number; sentBefore: number; sentAfter: number }>(
      tp, 'sendBytes', id, LIGHTPUSH, 100, { surbs: 0, timeoutMs: 20000 })
    assert.equal(assertOk(r.result, 'send with surbs: 0'), 0, 'an empty reply')
    assert.equal(r.sentAfter, r.sentBefore + 1, 'one request sent')
    assert.ok(r.ms < 10000, `settled when sent, not at the 20 s timeout (${r.ms.toFixed(0)} ms)`)
  })

  test('every first hop unreachable: SEND_FAILED at once, as the native sender fails, not a TIMEOUT', async () => {
    const port = await closedPort()
    // The gateway is reachable; every other mix node only at a closed port, so no first hop
    // can be dialled (the gateway itself is never on a path).
    const dead = pool.nodes.map((n, i) => i === 0 ? n : { ...n, multiaddrs: [`/ip4/127.0.0.1/tcp/${port}/p2p/${n.peer_id}`, `/ip4/127.0.0.1/tcp/${port}/ws/p2p/${n.peer_id}`] })
    const r = await call<Created>(tp, 'create', clientOptions(pool, { mixnodes: dead }))
    const lp = await call<{ result: Response | ErrorInfo; ms: number }>(tp, 'lightpush', r.id,
      { contentTopic: CONTENT_TOPIC, payload: { text: `dead first hops ${nonce()}` } }, { timeoutMs: 40000 })
    assertMixError(lp.result, 'SEND_FAILED', 'lightpush with every first hop unreachable')
    // The browser's dial gives up after about 10 s; the request timeout is 40 s.
    assert.ok(lp.ms < 25000, `failed at the dial, not at the 40 s timeout (${lp.ms.toFixed(0)} ms)`)
    await call(tp, 'close', r.id)
  })

  test('bootstrap only: the pool is found through rendezvous at the gateway, reported, and used', async () => {
    const opts = { bootstrap: [wsAddr(pool.nodes[0]!)], clusterId: pool.cluster_id, logLevel: 'warn' }
    const r = await call<Created>(tp, 'create', opts)
    const ev = r.events.find((e) => e.type === 'pool')
    console.log(`    bootstrap-only create() in ${r.createMs.toFixed(0)} ms (pool filled through rendezvous); events: ${r.events.map((e) => e.type).join(', ')}`)
    assert.ok(ev !== undefined, `a 'pool' event (got ${r.events.map((e) => e.type).join(', ') || 'none'})`)
    const detail = ev.detail as unknown as PoolDetail
    assert.equal(detail.size, pool.nodes.length, 'every relay of the testnet, node 0 included')
    assert.deepEqual([...detail.added].sort(), pool.nodes.map((n) => n.peer_id).sort())
    assert.deepEqual(detail.removed, [])
    assert.equal(detail.belowMinimum, false)
    const s = await call<{ poolSize: number }>(tp, 'stats', r.id)
    assert.equal(s.poolSize, pool.nodes.length)
    const lp = await call<{ result: Response | ErrorInfo }>(tp, 'lightpush', r.id, { contentTopic: CONTENT_TOPIC, payload: { text: `discovered pool ${nonce()}` } })
    const res = assertOk(lp.result, 'lightpush through the discovered pool')
    assert.equal(res.statusCode, 200, res.statusDesc)
    assert.ok(pool.nodes.some((n) => n.peer_id === res.servicePeerId), `service ${res.servicePeerId} is a testnet relay`)
    await call(tp, 'close', r.id)
  })

  test('bootstrap only, with no mix node in the namespace: NO_ROUTE within connectTimeoutMs', async () => {
    const t0 = Date.now()
    const r = await call<unknown>(tp, 'tryCreate', { bootstrap: [wsAddr(pool.nodes[0]!)], clusterId: 999, connectTimeoutMs: 3000 })
    const e = assertMixError(r, 'NO_ROUTE', 'cluster 999 (nobody registered)')
    assert.match(e.message, /rs\/999\/mix/)
    assert.ok(Date.now() - t0 < 10_000, `gave up within the connect timeout (plus slack): ${Date.now() - t0} ms`)
  })

  test('stats() counts requests and keeps build/open timings', async () => {
    const s = await call<{ sent: number; replies: number; timeouts: number; poolSize: number; buildMs: number[]; openMs: number[] }>(tp, 'stats', id)
    console.log(`    stats: sent=${s.sent} replies=${s.replies} timeouts=${s.timeouts} poolSize=${s.poolSize} buildMs[${s.buildMs.length}] openMs[${s.openMs.length}]`)
    assert.ok(s.sent >= 5, `sent ${s.sent}`)
    assert.ok(s.replies >= 5, `replies ${s.replies}`)
    assert.equal(s.poolSize, pool.nodes.length)
    assert.ok(s.buildMs.length >= 5 && s.buildMs.every((x) => typeof x === 'number' && x >= 0))
    assert.ok(s.openMs.length >= 5 && s.openMs.every((x) => typeof x === 'number' && x >= 0))
  })

  test('a module Web Worker imports the package, creates a client and gets a 200', async () => {
    const r = await call<{ ok: boolean; error?: unknown; hasWindow: boolean; hasDocument: boolean; beforeInit: string; reservation: boolean; response: Response; ms: number }>(
      tp, 'inWorker', clientOptions(pool), CONTENT_TOPIC)
    assert.ok(r.ok, JSON.stringify(r.error))
    assert.equal(r.hasWindow, false)
    assert.equal(r.hasDocument, false)
    assert.equal(r.beforeInit, 'NOT_INITIALISED')
    assert.equal(r.response.statusCode, 200)
    assert.ok((r.response.relayPeerCount ?? 0) >= 1)
    console.log(`    worker lightpush ${r.ms.toFixed(0)} ms, reservation event seen: ${r.reservation}`)
  })

  test('close(): in-flight and later calls reject with CLOSED; a close event fires', async () => {
    const r = await call<Record<string, unknown> & { events: string[]; closedFlag: boolean }>(tp, 'closeScenario', id, CONTENT_TOPIC)
    assert.equal(r.closeResult, 'closed')
    assert.equal(r.closeAgain, 'closed', 'close() is idempotent')
    assert.equal(r.closedFlag, true)
    assertMixError(r.inflight, 'CLOSED', 'lightpush in flight at close()')
    assertMixError(r.sendAfter, 'CLOSED', 'send after close')
    assertMixError(r.lightpushAfter, 'CLOSED', 'lightpush after close')
    console.log(`    after close: maxMessageLen → ${JSON.stringify(r.maxAfter)}, stats → ${isError(r.statsAfter) ? r.statsAfter.code : 'ok'}`)
    assert.ok(r.events.includes('close'), `events ${r.events.join(', ')}`)
  })
})
