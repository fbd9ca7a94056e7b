// The demo page: the npm package (js/dist, loaded unbundled as ES modules) against the local
// mixnet that mix-demo runs. No build step: mix-demo serves this file as it is.
import { initAsync, MixClient, MixError, optionsFromPool } from '/pkg/dist/index.js'

const $ = (id) => {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`#${id} missing`)
  return el
}

/** `16Uiu2H…a1b2c3`, as the terminal prints it. */
const short = (id) => (id.length <= 14 ? id : `${id.slice(0, 6)}…${id.slice(-6)}`)
const ms = (v) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`
const describe = (err) => (err instanceof MixError ? `${err.code}: ${err.message}` : (err instanceof Error ? err.message : String(err)))

let pool
let client
const relayIndex = new Map()

function relayLabel (peerId) {
  const i = relayIndex.get(peerId)
  return i === undefined ? short(peerId) : `relay ${i}`
}

function hopItem (peerId, role) {
  const li = document.createElement('li')
  li.className = 'hop'
  li.dataset.peerId = peerId
  const name = document.createElement('span')
  name.className = 'relay-name'
  name.textContent = relayLabel(peerId)
  const id = document.createElement('code')
  id.textContent = short(peerId)
  id.title = peerId
  li.append(name, ' ', id)
  if (role !== undefined) {
    const r = document.createElement('span')
    r.className = 'role'
    r.textContent = role
    li.append(' ', r)
  }
  return li
}

function endItem (text) {
  const li = document.createElement('li')
  li.className = 'end'
  li.textContent = text
  return li
}

async function refreshRelays () {
  try {
    const res = await fetch('/api/relays', { cache: 'no-store' })
    if (!res.ok) return
    const relays = await res.json()
    const body = $('relays').querySelector('tbody')
    body.replaceChildren(...relays.map((r) => {
      const tr = document.createElement('tr')
      for (const v of [`relay ${r.index}`, short(r.peerId), r.received, r.forwarded, r.exits, r.repliesSent]) {
        const td = document.createElement('td')
        td.textContent = String(v)
        tr.append(td)
      }
      tr.children[1].title = r.peerId
      return tr
    }))
  } catch {
    // The demo was stopped: the table keeps its last figures.
  }
}

/** Waits until a relay reports the message on the Waku network (gossipsub). */
async function watchWaku (text, timestamp) {
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    try {
      const res = await fetch('/api/messages', { cache: 'no-store' })
      const seen = res.ok ? await res.json() : []
      const mine = seen.find((m) => m.text === text && m.timestampNs === timestamp)
      if (mine !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, 300)) // let the other relays report
        const again = await (await fetch('/api/messages', { cache: 'no-store' })).json()
        const last = again.find((m) => m.seq === mine.seq) ?? mine
        return last.seenBy
      }
    } catch {
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return undefined
}

function addHistory (text, line, ok) {
  const li = document.createElement('li')
  li.className = ok ? 'ok' : 'failed'
  const t = document.createElement('span')
  t.className = 'time'
  t.textContent = new Date().toLocaleTimeString()
  const q = document.createElement('q')
  q.textContent = text.length > 60 ? `${text.slice(0, 60)}…` : text
  li.append(t, ' ', q, ` ${line}`)
  $('history').prepend(li)
}

async function send () {
  const text = $('message').value
  const contentTopic = $('content-topic').value.trim()
  $('send').disabled = true
  $('error').hidden = true
  $('state').textContent = 'Sending…'
  $('state').className = 'pending'
  const timestampNs = BigInt(Date.now()) * 1_000_000n
  const t0 = performance.now()
  try {
    const res = await client.lightpush({
      message: { payload: new TextEncoder().encode(text), contentTopic, timestamp: timestampNs }
    })
    const total = performance.now() - t0
    const ok = res.statusCode === 200
    $('state').textContent = ok
      ? `Published by ${relayLabel(res.servicePeerId)} to ${res.relayPeerCount ?? 0} Waku relay peers; the answer came back through the mixnet.`
      : `The service answered ${res.statusCode}${res.statusDesc ? `: ${res.statusDesc}` : ''}.`
    $('state').className = ok ? 'ok' : 'failed'
    $('status-code').textContent = String(res.statusCode)
    $('status-code').className = ok ? 'ok' : 'failed'
    $('status-text').textContent = ok ? 'OK' : (res.statusDesc ?? '')
    const t = res.trace
    const hops = $('hops')
    const back = $('reply-hops')
    if (t !== undefined) {
      hops.replaceChildren(
        endItem('you (this page)'),
        hopItem(t.hops[0], 'hop 1'),
        hopItem(t.hops[1], 'hop 2'),
        hopItem(t.hops[2], 'hop 3: exit, lightpush service')
      )
      back.replaceChildren(
        hopItem(t.hops[2], 'exit: builds the reply'),
        hopItem(t.replyHops[0], 'hop 1'),
        hopItem(t.replyHops[1], 'hop 2'),
        endItem(`${relayLabel(gatewayOf(client))} relays the circuit → you`)
      )
      $('phase-build').textContent = ms(t.buildMs)
      $('phase-mixnet').textContent = ms(t.mixnetMs)
      $('phase-open').textContent = ms(t.openMs)
      $('phase-other').textContent = ms(Math.max(0, total - t.buildMs - t.mixnetMs - t.openMs))
    }
    $('phase-total').textContent = ms(total)
    $('outcome').hidden = false
    $('waku').textContent = 'Waiting for the Waku network to report the message…'
    addHistory(text, `→ ${res.statusCode} in ${ms(total)}${t ? ` via ${t.hops.map(relayLabel).join(' → ')}` : ''}`, ok)
    const seenBy = ok ? await watchWaku(text, String(timestampNs)) : undefined
    $('waku').textContent = seenBy === undefined
      ? (ok ? 'No relay reported the message on its Waku shard within 5 s.' : '')
      : `On the Waku network: received by ${seenBy.map((i) => `relay ${i}`).join(', ')} (gossipsub, /waku/2/rs/${pool.cluster_id}/0).`
  } catch (err) {
    const total = performance.now() - t0
    $('state').textContent = 'The message was not answered.'
    $('state').className = 'failed'
    $('error').textContent = describe(err)
    $('error').hidden = false
    addHistory(text, `→ ${err instanceof MixError ? err.code : 'error'} after ${ms(total)}`, false)
  } finally {
    $('send').disabled = false
    void refreshRelays()
  }
}

function gatewayOf (c) {
  const m = /\/p2p\/([^/]+)\/p2p-circuit\//.exec(c.circuitAddress)
  return m === null ? '' : m[1]
}

async function main () {
  const t0 = performance.now()
  try {
    const res = await fetch('/pool.json', { cache: 'no-store' })
    if (!res.ok) throw new Error(`/pool.json: HTTP ${res.status}`)
    pool = await res.json()
    pool.nodes.forEach((n, i) => relayIndex.set(n.peer_id, i))
    void refreshRelays()
    await initAsync()
    $('conn').textContent = `Connecting to the gateway relay and reserving a reply circuit…`
    client = await MixClient.create(optionsFromPool(pool))
    const connectMs = performance.now() - t0
    $('conn').textContent = 'Connected.'
    $('conn').className = 'ok'
    $('me').textContent = client.peerId
    $('gateway').textContent = `${relayLabel(gatewayOf(client))} (${short(gatewayOf(client))}): replies reach this page over a circuit it relays`
    $('pool-size').textContent = `${client.stats().poolSize} relays, each with its X25519 mix key`
    $('connect-ms').textContent = `${ms(connectMs)} (load the wasm, dial over WebSocket, Noise, Yamux, reserve the circuit)`
    $('conn-details').hidden = false
    try {
      const max = client.maxLightpushPayload({ contentTopic: $('content-topic').value.trim() })
      $('limit').textContent = `Up to ${max} bytes of payload fit in one 4608-byte packet with its reply block.`
    } catch (err) {
      $('limit').textContent = describe(err)
    }
    $('send').disabled = false
    $('send').addEventListener('click', () => { void send() })
    client.addEventListener('pool', (e) => {
      $('pool-size').textContent = `${e.detail.size} relays, each with its X25519 mix key`
    })
    setInterval(() => { void refreshRelays() }, 2000)
  } catch (err) {
    $('conn').textContent = `Could not connect: ${describe(err)}. Is mix-demo still running?`
    $('conn').className = 'failed'
  }
}

void main()
