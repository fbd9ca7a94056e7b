// WebTransport vs WebSocket in headless Chromium (QUIC on) against a testnet whose relays offer
// both (`mix-relay testnet --webtransport`, MIX_WT_POOL_FILE). For each transport:
//   - transport set-up: `new WebTransport(url, { serverCertificateHashes })` until `ready`, and
//     `new WebSocket(url)` until `open`, to relay 0 (MIX_BENCH_DIALS times each);
//   - client set-up: `MixClient.create()` until the gateway's circuit reservation (transport,
//     Noise, and for WebSocket Yamux, then the reservation round trip), MIX_BENCH_CLIENTS times;
//   - end to end: MIX_BENCH_N lightpushes per client through the mixnet (3 hops out, the
//     service, 3 back), the mix nodes given only that transport's addresses so every browser
//     connection uses it; the first lightpush of a client (which dials its first hop) apart.
// Prints plain lines; no asserts on timings; exits non-zero only if a request fails.
//
//   MIX_WT_POOL_FILE=/tmp/wt-pool.json npm run bench:transports
import { call, inPage, openPage } from '../test/support/browser.js'
import type { TestPage } from '../test/support/browser.js'
import { loadPool, singleTransportOptions, wsAddr, wtAddr } from '../test/support/pool.js'
import type { Pool } from '../test/support/pool.js'
import { startHarness } from '../test/support/setup.js'

const N = Number(process.env.MIX_BENCH_N ?? 20)
const CLIENTS = Number(process.env.MIX_BENCH_CLIENTS ?? 5)
const DIALS = Number(process.env.MIX_BENCH_DIALS ?? 20)
const CONTENT_TOPIC = '/mix-js/1/bench-transports/proto'

type Kind = 'webtransport' | 'websocket'

function quantile (sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}

function summary (xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b)
  const f = (x: number): string => x.toFixed(1)
  return `n ${s.length} p50 ${f(quantile(s, 0.5))} p95 ${f(quantile(s, 0.95))} p99 ${f(quantile(s, 0.99))} max ${f(s.at(-1) ?? Number.NaN)} ms`
}

/** Raw transport set-up to relay 0, in the page: ms per dial. */
async function rawDials (tp: TestPage, pool: Pool, kind: Kind): Promise<number[]> {
  const addr = kind === 'webtransport' ? wtAddr(pool.nodes[0]!) : wsAddr(pool.nodes[0]!)
  const m = /^\/ip4\/([^/]+)\/(udp|tcp)\/(\d+)\//.exec(addr)
  if (m === null) throw new Error(`cannot dial ${addr}`)
  const hashes = [...addr.matchAll(/\/certhash\/u([^/]+)/g)].map((x) => x[1]!)
  return await inPage<number[]>(tp, `(async () => {
    const fromB64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4)), (c) => c.charCodeAt(0));
    // Multihash: 0x12 (sha2-256), 0x20 (32 bytes), digest.
    const hashes = ${JSON.stringify(hashes)}.map((h) => ({ algorithm: 'sha-256', value: fromB64url(h).slice(2) }));
    const times = [];
    for (let i = 0; i < ${DIALS}; i++) {
      const t0 = performance.now();
      if (${JSON.stringify(kind)} === 'webtransport') {
        const wt = new WebTransport('https://${m[1]}:${m[3]}/.well-known/libp2p-webtransport?type=noise', { serverCertificateHashes: hashes });
        await wt.ready;
        times.push(performance.now() - t0);
        wt.close();
      } else {
        const ws = new WebSocket('ws://${m[1]}:${m[3]}/');
        await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject });
        times.push(performance.now() - t0);
        ws.close();
      }
    }
    return times;
  })()`)
}

async function main (): Promise<void> {
  for (const [name, v] of [['MIX_BENCH_N', N], ['MIX_BENCH_CLIENTS', CLIENTS], ['MIX_BENCH_DIALS', DIALS]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`)
  }
  const pool = loadPool('MIX_WT_POOL_FILE')
  const h = await startHarness([['harness', 'native']], [], { quic: true })
  let failed = 0
  try {
    const tp = await openPage(h.browser, `${h.server.url}/pages/harness.html`, 'globalThis.mixTest !== undefined')
    await call(tp, 'init')
    console.log(`bench: WebTransport vs WebSocket, ${pool.nodes.length}-node loopback testnet, Chromium headless; ${DIALS} raw dials, ${CLIENTS} clients x ${N} lightpushes per transport`)
    // Alternate the transports so that neither gets a warmer machine.
    const results: Record<Kind, { raw: number[], create: number[], first: number[], e2e: number[] }> = {
      webtransport: { raw: [], create: [], first: [], e2e: [] },
      websocket: { raw: [], create: [], first: [], e2e: [] }
    }
    for (const kind of ['webtransport', 'websocket'] as const) results[kind].raw = await rawDials(tp, pool, kind)
    for (let c = 0; c < CLIENTS; c++) {
      for (const kind of ['webtransport', 'websocket'] as const) {
        const r = results[kind]
        const created = await call<{ id: number; createMs: number }>(tp, 'create', singleTransportOptions(pool, kind, { logLevel: 'error' }))
        r.create.push(created.createMs)
        for (let i = 0; i < N; i++) {
          const p = await call<{ result: { statusCode?: number; thrown?: boolean; code?: string; message?: string }; ms: number }>(
            tp, 'lightpush', created.id, { contentTopic: CONTENT_TOPIC, payload: { text: `${kind} ${c} ${i} ${Date.now()}` } })
          if (p.result.thrown === true || p.result.statusCode !== 200) {
            failed++
            console.log(`${kind} client ${c} request ${i}: ${JSON.stringify(p.result)}`)
          } else if (i === 0) {
            r.first.push(p.ms)
          } else {
            r.e2e.push(p.ms)
          }
        }
        await call(tp, 'close', created.id)
      }
      console.log(`progress: ${c + 1}/${CLIENTS} clients per transport`)
    }
    for (const kind of ['webtransport', 'websocket'] as const) {
      const r = results[kind]
      console.log(`${kind}: transport set-up ${summary(r.raw)}`)
      console.log(`${kind}: create() to reservation ${summary(r.create)}`)
      console.log(`${kind}: first lightpush (dials the first hop) ${summary(r.first)}`)
      console.log(`${kind}: later lightpushes e2e ${summary(r.e2e)}`)
    }
    await tp.close()
  } finally {
    await h.close()
  }
  if (failed > 0) process.exitCode = 1
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
