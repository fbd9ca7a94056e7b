// WebTransport end to end in headless Chromium (QUIC on) against a testnet whose relays listen on
// libp2p WebTransport and rotate their certificates every few seconds (MIX_WT_POOL_FILE, written
// by `mix-relay testnet --webtransport --webtransport-rotate-secs N`, rewritten after rotations).
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'

import { call, openPage } from './support/browser.js'
import type { TestPage } from './support/browser.js'
import { loadPool, singleTransportOptions, wsAddr, wtAddr } from './support/pool.js'
import type { Pool } from './support/pool.js'
import { startHarness } from './support/setup.js'
import type { Harness } from './support/setup.js'

const CONTENT_TOPIC = '/mix-js/1/webtransport/proto'

interface Event { type: string; detail: Record<string, unknown>; at: number }
interface Created { id: number; createMs: number; events: Event[] }
interface Pushed { result: { statusCode?: number; thrown?: boolean; code?: string; message?: string }; ms: number }

function certhashes (addr: string): string[] {
  return [...addr.matchAll(/\/certhash\/([^/]+)/g)].map((m) => m[1]!)
}

function port (addr: string): string {
  return addr.split('/certhash/')[0]!
}

/** The addresses of the `connected` events to relays (a reply's circuit shows as `/p2p/…`). */
function relayConnections (events: Event[]): string[] {
  return events
    .filter((e) => e.type === 'connected')
    .map((e) => String(e.detail.address))
    .filter((a) => !/^\/p2p\/[^/]+$/.test(a))
}

describe('WebTransport in Chromium', { timeout: 300_000 }, () => {
  let pool0: Pool
  let h: Harness
  let tp: TestPage
  const rotateSecs = Number(process.env.MIX_WT_ROTATE_SECS ?? 20)

  async function lightpushes (id: number, n: number, label: string): Promise<void> {
    for (let i = 0; i < n; i++) {
      const r = await call<Pushed>(tp, 'lightpush', id, { contentTopic: CONTENT_TOPIC, payload: { text: `${label} ${i} ${Date.now()}` } })
      assert.ok(r.result.thrown !== true, `${label} ${i}: ${r.result.code ?? ''} ${r.result.message ?? ''}`)
      assert.equal(r.result.statusCode, 200, `${label} ${i}`)
    }
  }

  async function createOverWebTransport (options: Record<string, unknown>, label: string): Promise<Created> {
    const created = await call<Created>(tp, 'create', options)
    assert.ok(created.events.some((e) => e.type === 'reservation'), `${label}: a circuit reservation on the gateway`)
    // At least 3 lightpushes, and more until a path's first hop was not the gateway (each path
    // starts there with probability about 1/5), so that a first-hop dial is seen too.
    let conns: string[] = []
    for (let sent = 0; sent < 12 && (sent < 3 || conns.length < 2); sent++) {
      await lightpushes(created.id, 1, `${label} #${sent}`)
      conns = relayConnections(await call<Event[]>(tp, 'events', created.id))
    }
    assert.ok(conns.length >= 2, `${label}: the gateway and first hops: ${JSON.stringify(conns)}`)
    for (const a of conns) assert.match(a, /\/quic-v1\/webtransport\//, `${label}: every relay connection is WebTransport`)
    await call(tp, 'close', created.id)
    return created
  }

  before(async () => {
    pool0 = loadPool('MIX_WT_POOL_FILE')
    h = await startHarness([['harness', 'native']], [], { quic: true })
    tp = await openPage(h.browser, `${h.server.url}/pages/harness.html`, 'globalThis.mixTest !== undefined')
    await call(tp, 'init')
  })

  after(async () => {
    await tp?.close()
    await h?.close()
  })

  test('every relay advertises a WebTransport address with the current and next certhash', () => {
    for (const n of pool0.nodes) {
      const a = wtAddr(n)
      assert.match(a, /^\/ip4\/127\.0\.0\.1\/udp\/\d+\/quic-v1\/webtransport\/certhash\/u[^/]+\/certhash\/u[^/]+\/p2p\//)
      assert.equal(certhashes(a).length, 2)
      assert.ok(n.multiaddrs.some((m) => m.includes('/ws/')), 'and a WebSocket fallback')
    }
  })

  test('connects with only the certhash multiaddr and lightpushes through the mixnet over WebTransport', async () => {
    await createOverWebTransport(singleTransportOptions(pool0, 'webtransport'), 'pool as read')
  })

  test('a certificate rotation does not break new dials: old and new addresses both connect', async () => {
    const file = process.env.MIX_WT_POOL_FILE!
    const before0 = wtAddr(pool0.nodes[0]!)
    let pool1 = pool0
    const deadline = Date.now() + 3 * rotateSecs * 1000
    while (wtAddr(pool1.nodes[0]!) === before0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      pool1 = JSON.parse(readFileSync(file, 'utf8')) as Pool
    }
    const after0 = wtAddr(pool1.nodes[0]!)
    assert.notEqual(after0, before0, `the relays rotated within ${3 * rotateSecs} s`)
    assert.equal(port(after0), port(before0), 'same listener')
    assert.equal(certhashes(after0)[0], certhashes(before0)[1], 'the next certificate is now presented')
    // Addresses handed out before the rotation still dial (the relay vouches for them in Noise).
    await createOverWebTransport(singleTransportOptions(pool0, 'webtransport'), 'pre-rotation addresses')
    await createOverWebTransport(singleTransportOptions(pool1, 'webtransport'), 'post-rotation addresses')
  })

  test('falls back to WebSocket when the WebTransport dial fails', async () => {
    const gateway = pool0.nodes[0]!
    // Node 0's port with node 1's certhashes: the TLS check fails.
    const forged = port(wtAddr(gateway)) + wtAddr(pool0.nodes[1]!).slice(port(wtAddr(pool0.nodes[1]!)).length).replace(pool0.nodes[1]!.peer_id, gateway.peer_id)
    const created = await call<Created>(tp, 'create', {
      bootstrap: [forged, wsAddr(gateway)],
      mixnodes: pool0.nodes,
      clusterId: pool0.cluster_id,
      logLevel: 'error'
    })
    assert.ok(created.events.some((e) => e.type === 'reservation'), 'a reservation over the fallback')
    const first = relayConnections(created.events)[0]
    assert.ok(first?.includes('/ws/') === true, `the gateway connection is WebSocket: ${first ?? 'none'}`)
    await lightpushes(created.id, 1, 'fallback')
    await call(tp, 'close', created.id)
  })
})
