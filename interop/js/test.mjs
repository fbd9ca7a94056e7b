// Interop tests: stock js-libp2p and stock js-waku nodes against mix-relay.
//
// Usage: node test.mjs <pool-file> [metrics-base-port]
//   (or POOL_FILE / METRICS_BASE_PORT in the environment)
//
// The pool file is the one `mix-relay testnet --pool-file` writes; node i of the
// testnet serves Prometheus metrics on 127.0.0.1:<metrics-base-port + i>.
// Only loopback addresses are dialed.
//
// Prints one progress line per step and closes with "N passed, N failed".

import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

import { createLibp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { mplex } from '@libp2p/mplex'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { proto_lightpush as lpProto } from '@waku/proto'

const poolFile = process.argv[2] ?? process.env.POOL_FILE
const metricsBase = Number(process.argv[3] ?? process.env.METRICS_BASE_PORT ?? 0)
if (!poolFile) {
  console.error('usage: node test.mjs <pool-file> [metrics-base-port]')
  process.exit(2)
}
const pool = JSON.parse(readFileSync(poolFile, 'utf8'))
const CLUSTER = pool.cluster_id
const SHARD = pool.shards[0]
const PUBSUB_TOPIC = `/waku/2/rs/${CLUSTER}/${SHARD}`

const EXPECTED_PROTOCOLS = [
  '/mix/1.0.0',
  '/vac/waku/relay/2.0.0',
  '/vac/waku/lightpush/3.0.0',
  '/ipfs/ping/1.0.0',
  '/libp2p/circuit/relay/0.2.0/hop'
]

function wsAddr (node) {
  const a = node.multiaddrs.find((m) => m.includes('/ws/'))
  if (!a) throw new Error(`no /ws address for ${node.peer_id}`)
  if (!a.startsWith('/ip4/127.') && !a.startsWith('/ip6/::1/')) {
    throw new Error(`refusing to dial non-loopback address ${a}`)
  }
  return a
}

const t0 = Date.now()
const results = []
const ts = () => `[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s]`
const log = (msg) => console.log(`${ts()}   ${msg}`)

async function withTimeout (promise, ms, what) {
  let timer
  try {
    return await Promise.race([
      promise,
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}

async function runTest (name, fn, { timeoutMs = 60_000 } = {}) {
  console.log(`${ts()} ▶ ${name}`)
  const start = Date.now()
  try {
    await withTimeout(fn(), timeoutMs, name)
    const ms = Date.now() - start
    results.push({ name, ok: true, ms })
    console.log(`${ts()} ✔ PASS ${name} (${ms} ms)`)
  } catch (err) {
    const ms = Date.now() - start
    results.push({ name, ok: false, ms, err })
    console.log(`${ts()} ✘ FAIL ${name} (${ms} ms): ${err?.stack ?? err}`)
  }
}

function assert (cond, msg) {
  if (!cond) throw new Error(msg)
}

// ---- metrics -------------------------------------------------------------------------

async function scrape (i) {
  if (!metricsBase) return null
  const res = await fetch(`http://127.0.0.1:${metricsBase + i}/metrics`)
  if (!res.ok) throw new Error(`metrics of node ${i}: HTTP ${res.status}`)
  return res.text()
}

/** Sum of all samples of `name` whose labels contain every `labels` pair. */
function metric (text, name, labels = {}) {
  let sum = 0
  let found = false
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/)
    if (!m || m[1] !== name) continue
    const lbl = m[2] ?? ''
    if (!Object.entries(labels).every(([k, v]) => lbl.includes(`${k}="${v}"`))) continue
    sum += Number(m[3])
    found = true
  }
  return found ? sum : 0
}

async function scrapeAll (name, labels) {
  const out = []
  for (let i = 0; i < pool.nodes.length; i++) {
    const text = await scrape(i)
    out.push(text == null ? null : metric(text, name, labels))
  }
  return out
}

/** Poll until some node other than `except` has `name` above its `before` value. */
async function waitForRise (name, before, except, { timeoutMs = 10_000, labels } = {}) {
  const deadline = Date.now() + timeoutMs
  let now
  while (Date.now() < deadline) {
    now = await scrapeAll(name, labels)
    const risen = now.map((v, i) => i !== except && v > before[i])
    if (risen.some(Boolean)) return now
    await sleep(250)
  }
  throw new Error(`${name} did not rise on any node but ${except}: before=${JSON.stringify(before)} after=${JSON.stringify(now)}`)
}

// ---- js-libp2p tests -------------------------------------------------------------------

async function libp2pDialIdentifyPing (muxers, relay) {
  const node = await createLibp2p({
    addresses: { listen: [] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: muxers,
    services: { identify: identify(), ping: ping() }
  })
  try {
    const target = multiaddr(wsAddr(relay))
    const identified = new Promise((resolve) => {
      node.addEventListener('peer:identify', (evt) => {
        if (evt.detail.peerId.toString() === relay.peer_id) resolve(evt.detail)
      })
    })
    log(`dialing ${target}`)
    const conn = await node.dial(target)
    log(`connected: muxer=${conn.multiplexer} encryption=${conn.encryption} status=${conn.status}`)
    const id = await withTimeout(identified, 10_000, 'identify')
    log(`identify: agent=${id.agentVersion} protocol=${id.protocolVersion}`)
    log(`identify: listenAddrs=${id.listenAddrs.map(String).join(', ')}`)
    log(`identify: protocols=${id.protocols.join(' ')}`)
    const missing = EXPECTED_PROTOCOLS.filter((p) => !id.protocols.includes(p))
    assert(missing.length === 0, `relay's identify lacks ${missing.join(', ')}; it reported: ${id.protocols.join(' ')}`)
    const rtt = await node.services.ping.ping(target)
    log(`ping round-trip ${rtt} ms`)
    assert(typeof rtt === 'number' && rtt >= 0, `bad ping result ${rtt}`)
    await conn.close()
  } finally {
    await node.stop()
  }
}

// ---- js-waku tests --------------------------------------------------------------------

const CONTENT_TOPIC = '/mix-interop/1/test/proto'
const waku = await import('@waku/sdk')
let lightNode // shared by tests 3 and 4

async function wakuLightPush (relayIdx) {
  const relay = pool.nodes[relayIdx]
  const addr = wsAddr(relay)
  log(`@waku/sdk createLightNode, bootstrapPeers=[${addr}], networkConfig={clusterId:${CLUSTER}}`)
  lightNode = await waku.createLightNode({
    defaultBootstrap: false,
    bootstrapPeers: [addr],
    networkConfig: { clusterId: CLUSTER },
    discovery: { dns: false, peerExchange: false, peerCache: false },
    libp2p: { filterMultiaddrs: false, hideWebSocketInfo: true },
    autoStart: false
  })
  const identified = new Promise((resolve) => {
    lightNode.libp2p.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.toString() === relay.peer_id) resolve(evt.detail)
    })
  })
  await lightNode.start()
  const id = await withTimeout(identified, 15_000, 'js-waku identify of the relay')
  log(`identified relay: agent=${id.agentVersion} protocols=${id.protocols.join(' ')}`)
  if (!id.protocols.includes('/vac/waku/metadata/1.0.0')) {
    log('NOTE: the relay does not advertise /vac/waku/metadata/1.0.0 (nwaku does); js-waku then has no shardInfo for it and uses it as a peer of unknown shard')
  }
  const conns = lightNode.libp2p.getConnections(relay.peer_id)
  log(`connections to relay: ${conns.map((c) => `${c.remoteAddr} muxer=${c.multiplexer}`).join('; ')}`)

  await withTimeout(lightNode.waitForPeers([waku.Protocols.LightPush]), 15_000,
    'lightNode.waitForPeers([LightPush]) (js-waku waits for a LightPush peer and its /vac/waku/metadata/1.0.0 handshake)')
  const peer = await lightNode.libp2p.peerStore.get(lightNode.libp2p.getConnections(relay.peer_id)[0].remotePeer)
  const shardInfo = peer.metadata.get('shardInfo')
  log(`waitForPeers resolved; relay shardInfo in peer store: ${shardInfo ? JSON.stringify(waku.utils.decodeRelayShard(shardInfo)) : 'none'}`)

  const encoder = lightNode.createEncoder({ contentTopic: CONTENT_TOPIC, shardId: SHARD })
  log(`encoder pubsubTopic=${encoder.pubsubTopic} contentTopic=${encoder.contentTopic}`)
  assert(encoder.pubsubTopic === PUBSUB_TOPIC, `encoder pubsub topic ${encoder.pubsubTopic} != ${PUBSUB_TOPIC}`)

  const before = await scrapeAll('waku_relay_messages_received_total')
  const lpBefore = await scrapeAll('waku_lightpush_requests_total', { status: '200' })
  const payload = waku.utf8ToBytes(`hello from js-waku lightpush ${Date.now()}`)
  const res = await lightNode.lightPush.send(encoder, { payload }, { autoRetry: false })
  log(`lightPush.send: successes=[${res.successes.map(String).join(', ')}] failures=${JSON.stringify(res.failures.map((f) => ({ error: f.error, peerId: f.peerId?.toString() })))}`)
  assert(res.failures.length === 0 && res.successes.length > 0,
    `lightpush failed: ${JSON.stringify(res.failures.map((f) => f.error))}`)
  assert(res.successes.some((p) => p.toString() === relay.peer_id), 'success did not come from the relay')

  if (metricsBase) {
    const after = await waitForRise('waku_relay_messages_received_total', before, relayIdx)
    log(`waku_relay_messages_received_total before=${JSON.stringify(before)} after=${JSON.stringify(after)}`)
    const lpAfter = await scrapeAll('waku_lightpush_requests_total', { status: '200' })
    log(`waku_lightpush_requests_total{status="200"} before=${JSON.stringify(lpBefore)} after=${JSON.stringify(lpAfter)}`)
    assert(lpAfter[relayIdx] > lpBefore[relayIdx], `relay ${relayIdx}'s waku_lightpush_requests_total{status="200"} did not rise`)
  } else {
    log('no metrics port given: skipping the metrics check')
  }
}

// A raw lightpush v3 exchange over the js-waku light node's own connection, with js-waku's
// own protobufs (@waku/proto, the version @waku/sdk uses), to read the status code and
// relay_peer_count that @waku/sdk only logs.
function varint (n) {
  const out = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return Uint8Array.from(out)
}
function concat (a, b) {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}
function readVarint (buf) {
  let n = 0
  for (let i = 0, shift = 0; i < buf.length && i < 10; i++, shift += 7) {
    n += (buf[i] & 0x7f) * 2 ** shift
    if (!(buf[i] & 0x80)) return { len: n, off: i + 1 }
  }
  return null
}
async function rawLightPush (conn, body) {
  const stream = await conn.newStream('/vac/waku/lightpush/3.0.0')
  const sinkDone = stream.sink([concat(varint(body.length), body)])
  // Read to the end of the stream, as js-waku's LightPushCore does (`pipe(..., lp.decode,
  // all)`): closing early leaves the relay's close frame for a stream js-mplex has already
  // dropped, and js-mplex closes the whole connection after 5 such frames
  // ("Too many messages for missing streams").
  let buf = new Uint8Array(0)
  for await (const chunk of stream.source) buf = concat(buf, chunk.subarray())
  await sinkDone.catch(() => {})
  let frame = null
  const v = readVarint(buf)
  if (v && buf.length >= v.off + v.len) frame = buf.subarray(v.off, v.off + v.len)
  if (!frame) throw new Error(`stream ended without a response (${buf.length} bytes read)`)
  return lpProto.LightPushResponseV3.decode(frame)
}

async function wakuLightPushStatusCodes (relayIdx) {
  assert(lightNode, 'needs the light node from the lightpush test')
  const relay = pool.nodes[relayIdx]
  const conn = lightNode.libp2p.getConnections().find((c) => c.remotePeer.toString() === relay.peer_id)
  assert(conn, `light node has no connection to relay ${relayIdx}`)
  const encoder = lightNode.createEncoder({ contentTopic: CONTENT_TOPIC, shardId: SHARD })
  const protoMsg = async (payload) => ({
    ...(await encoder.toProtoObj({ payload })),
    timestamp: BigInt(Date.now()) * 1_000_000n
  })
  const nonce = `${Date.now()}-${Math.random().toString(36).slice(2)}`
  const valid = await protoMsg(waku.utf8ToBytes(`raw lightpush v3 ${nonce}`))
  const cases = [
    { name: 'valid message', expect: 200, minPeers: 1, body: lpProto.LightPushRequestV3.encode({ requestId: `ok-${nonce}`, pubsubTopic: PUBSUB_TOPIC, message: valid }) },
    { name: 'same message again', expect: null, body: lpProto.LightPushRequestV3.encode({ requestId: `dup-${nonce}`, pubsubTopic: PUBSUB_TOPIC, message: valid }) },
    { name: `unserved shard /waku/2/rs/${CLUSTER}/${SHARD + 7}`, expect: 421, body: lpProto.LightPushRequestV3.encode({ requestId: `shard-${nonce}`, pubsubTopic: `/waku/2/rs/${CLUSTER}/${SHARD + 7}`, message: await protoMsg(waku.utf8ToBytes(`wrong shard ${nonce}`)) }) },
    { name: 'empty pubsub topic', expect: 400, body: lpProto.LightPushRequestV3.encode({ requestId: `empty-${nonce}`, pubsubTopic: '', message: await protoMsg(waku.utf8ToBytes(`empty topic ${nonce}`)) }) },
    { name: '200 KiB payload (> 150 KiB)', expect: 413, body: lpProto.LightPushRequestV3.encode({ requestId: `big-${nonce}`, pubsubTopic: PUBSUB_TOPIC, message: await protoMsg(new Uint8Array(200 * 1024).fill(7)) }) },
    { name: 'undecodable request', expect: 400, requestId: 'N/A', body: Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f]) }
  ]
  const problems = []
  for (const c of cases) {
    let res
    try {
      res = await withTimeout(rawLightPush(conn, c.body), 10_000, c.name)
    } catch (e) {
      log(`${c.name}: ${e.message}`)
      problems.push(`${c.name}: ${e.message}`)
      continue
    }
    log(`${c.name}: status_code=${res.statusCode} status_desc=${JSON.stringify(res.statusDesc)} relay_peer_count=${res.relayPeerCount} request_id=${res.requestId}`)
    if (c.expect != null && res.statusCode !== c.expect) problems.push(`${c.name}: status ${res.statusCode}, expected ${c.expect}`)
    if (c.minPeers && !(res.relayPeerCount >= c.minPeers)) problems.push(`${c.name}: relay_peer_count ${res.relayPeerCount}, expected >= ${c.minPeers}`)
    const wantId = c.requestId ?? lpProto.LightPushRequestV3.decode(c.body).requestId
    if (res.requestId !== wantId) problems.push(`${c.name}: request_id ${res.requestId}, expected ${wantId}`)
  }
  assert(problems.length === 0, problems.join('; '))
}

async function wakuRelayNode (relayIdx, pushIdx) {
  // @waku/sdk dropped createRelayNode after 0.0.27 (the last @waku/sdk that depends on
  // @waku/relay); that version is installed under the alias waku-sdk-relay.
  const sdkRelay = await import('waku-sdk-relay')
  const { createRelayNode } = await import('waku-sdk-relay/relay')
  const relay = pool.nodes[relayIdx]
  const addr = wsAddr(relay)
  log(`@waku/sdk@0.0.27 createRelayNode, bootstrapPeers=[${addr}], networkConfig={clusterId:${CLUSTER}, shards:[${SHARD}]}`)
  const node = await createRelayNode({
    defaultBootstrap: false,
    bootstrapPeers: [addr],
    networkConfig: { clusterId: CLUSTER, shards: [SHARD] },
    libp2p: { filterMultiaddrs: false, hideWebSocketInfo: true }
  })
  try {
    const identified = new Promise((resolve) => {
      node.libp2p.addEventListener('peer:identify', (evt) => {
        if (evt.detail.peerId.toString() === relay.peer_id) resolve(evt.detail)
      })
    })
    await node.start()
    const id = await withTimeout(identified, 15_000, 'identify')
    log(`identified relay: agent=${id.agentVersion}`)
    const pubsubTopics = node.relay.pubsubTopics ?? [PUBSUB_TOPIC]
    log(`relay node topics: ${[...pubsubTopics].join(', ')}`)

    const decoder = sdkRelay.createDecoder(CONTENT_TOPIC, { clusterId: CLUSTER, shard: SHARD })
    const text = `lightpush via relay ${pushIdx} to a js-waku relay node ${Date.now()}-${Math.random().toString(36).slice(2)}`
    let onMessage
    const gotMessage = new Promise((resolve) => { onMessage = resolve })
    await node.relay.subscribe([decoder], (msg) => {
      const body = new TextDecoder().decode(msg.payload)
      if (body.startsWith(text)) onMessage(msg)
      else log(`(relay node also got an earlier message, e.g. by gossip IWANT: "${body}")`)
    })
    log('subscribed; waiting for a gossipsub mesh peer (waitForRemotePeer([Relay]))')
    await withTimeout(sdkRelay.waitForRemotePeer(node, [sdkRelay.Protocols.Relay]), 20_000,
      'waitForRemotePeer([Relay]): relay never joined the js-waku node\'s gossipsub mesh')
    log(`mesh peers on ${PUBSUB_TOPIC}: ${node.relay.getMeshPeers(PUBSUB_TOPIC).map(String).join(', ')}`)

    // Receive: a message lightpushed by the light node to another relay.
    assert(lightNode, 'needs the light node from the lightpush test')
    const encoder = lightNode.createEncoder({ contentTopic: CONTENT_TOPIC, shardId: SHARD })
    // The mesh may need a heartbeat to settle on the relay side too: retry a few times.
    let msg
    for (let attempt = 1; attempt <= 5 && !msg; attempt++) {
      const res = await lightNode.lightPush.send(encoder, { payload: waku.utf8ToBytes(`${text} #${attempt}`) }, { autoRetry: false })
      log(`lightpush to relay ${pushIdx} (attempt ${attempt}): successes=${res.successes.length} failures=${JSON.stringify(res.failures.map((f) => f.error))}`)
      msg = await Promise.race([gotMessage, sleep(3000).then(() => undefined)])
    }
    assert(msg, 'the js-waku relay node received nothing over gossipsub')
    log(`received over relay: "${new TextDecoder().decode(msg.payload)}" contentTopic=${msg.contentTopic} pubsubTopic=${msg.pubsubTopic}`)

    // Publish: js-waku relay node -> relay -> other relays.
    const relayEncoder = sdkRelay.createEncoder({ contentTopic: CONTENT_TOPIC, pubsubTopicShardInfo: { clusterId: CLUSTER, shard: SHARD } })
    const before = await scrapeAll('waku_relay_messages_received_total')
    const res = await node.relay.send(relayEncoder, { payload: waku.utf8ToBytes(`published by a js-waku relay node ${Date.now()}`) })
    log(`relay.send: successes=${res.successes.map(String).join(', ')} failures=${JSON.stringify(res.failures)}`)
    assert(res.successes.length > 0, `relay.send failed: ${JSON.stringify(res.failures)}`)
    if (metricsBase) {
      const after = await waitForRise('waku_relay_messages_received_total', before, relayIdx)
      log(`waku_relay_messages_received_total before=${JSON.stringify(before)} after=${JSON.stringify(after)}`)
    }
  } finally {
    await node.stop()
  }
}

// ---- run -------------------------------------------------------------------------------

log(`pool: ${pool.nodes.length} relays, cluster ${CLUSTER}, shard ${SHARD}; metrics base port ${metricsBase || 'none'}`)

await runTest('1. js-libp2p (ws + noise + yamux): identify and ping', () =>
  libp2pDialIdentifyPing([yamux()], pool.nodes[0]))
await runTest('2. js-libp2p (ws + noise + mplex only): identify and ping', () =>
  libp2pDialIdentifyPing([mplex()], pool.nodes[1]))
await runTest('3. js-waku light node (@waku/sdk): lightpush v3 send, relayed', () =>
  wakuLightPush(0), { timeoutMs: 60_000 })
await runTest('3b. lightpush v3 status codes and relay_peer_count (js-waku protobufs, raw stream)', () =>
  wakuLightPushStatusCodes(0))
await runTest('4. js-waku relay node (@waku/sdk@0.0.27 createRelayNode): connect, subscribe, receive, publish', () =>
  wakuRelayNode(2, 0), { timeoutMs: 90_000 })

if (lightNode) await lightNode.stop().catch(() => {})

const passed = results.filter((r) => r.ok).length
const failed = results.length - passed
console.log('\n==== interop summary ====')
for (const r of results) {
  console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.name}  (${r.ms} ms)${r.ok ? '' : `\n      ${String(r.err?.message ?? r.err).split('\n')[0]}`}`)
}
console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
