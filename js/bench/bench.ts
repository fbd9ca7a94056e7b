// Benchmark of the built package in headless Chromium against a running testnet:
// N (MIX_BENCH_N, default 100) sequential lightpushes through the mixnet, timed in the page.
// Prints plain lines: e2e latency p50/p95/p99/max, stats().buildMs and openMs p50/p99, and the
// raw and gzip sizes of js/wasm/mix_wasm_bg.wasm (and js/wasm-core/ if built), and the sans-IO
// build time of a lightpush request with 1 SURB in each wire format (lip183, v039). The
// e2e client uses the pool file's format. No asserts on timings; exits non-zero only if a
// request fails. MIX_BENCH_N=0 runs the sans-IO part only.
//
//   MIX_POOL_FILE=/tmp/pool.json npm run bench
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { gzipSync } from 'node:zlib'

import { call, inPage, openPage } from '../test/support/browser.js'
import { WASM_CORE_DIR, WASM_DIR } from '../test/support/paths.js'
import { clientOptions, loadPool } from '../test/support/pool.js'
import { startHarness } from '../test/support/setup.js'

const N = Number(process.env.MIX_BENCH_N ?? 100)
/** Iterations of the sans-IO micro-benchmark (building a request with one SURB, no network). */
const CORE_N = Number(process.env.MIX_BENCH_CORE_N ?? 500)
const CONTENT_TOPIC = '/mix-js/1/bench/proto'

function quantile (sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}

const fmt = (x: number): string => x.toFixed(2)

function sizes (dir: string, label: string): void {
  const f = path.join(dir, 'mix_wasm_bg.wasm')
  if (!existsSync(f)) return
  const bytes = readFileSync(f)
  console.log(`wasm ${label} ${path.relative(path.resolve(WASM_DIR, '..', '..'), f)}: raw ${bytes.length} bytes, gzip -9 ${gzipSync(bytes, { level: 9 }).length} bytes`)
}

async function main (): Promise<void> {
  if (!Number.isSafeInteger(N) || N < 0) throw new Error(`MIX_BENCH_N must be an integer ≥ 0, is ${process.env.MIX_BENCH_N}`)
  const pool = loadPool()
  const coreBuilt = existsSync(path.join(WASM_CORE_DIR, 'mix_wasm_bg.wasm'))
  const h = await startHarness([['harness', 'native'], ['worker', 'native']],
    coreBuilt ? [{ prefix: '/pkg/wasm-core/', dir: WASM_CORE_DIR }] : [])
  let failed = 0
  try {
    const tp = await openPage(h.browser, `${h.server.url}/pages/harness.html`, 'globalThis.mixTest !== undefined')
    await call(tp, 'init')
    const formatOption = pool.format === undefined ? {} : { format: pool.format }
    const created = await call<{ id: number; createMs: number }>(tp, 'create', clientOptions(pool, formatOption))
    console.log(`bench: ${N} sequential lightpushes, ${pool.nodes.length}-node ${pool.format ?? 'lip183'} testnet, Chromium headless`)
    console.log(`create (connect + reservation): ${fmt(created.createMs)} ms`)
    const e2e: number[] = []
    for (let i = 0; i < N; i++) {
      const r = await call<{ result: { statusCode?: number; thrown?: boolean; code?: string; message?: string }; ms: number }>(
        tp, 'lightpush', created.id, { contentTopic: CONTENT_TOPIC, payload: { text: `bench ${i} ${Date.now()}` } })
      if (r.result.thrown === true || r.result.statusCode !== 200) {
        failed++
        console.log(`request ${i}: ${JSON.stringify(r.result)}`)
      } else {
        e2e.push(r.ms)
      }
      if ((i + 1) % 25 === 0) console.log(`progress: ${i + 1}/${N}`)
    }
    const stats = await call<{ sent: number; replies: number; timeouts: number; buildMs: number[]; openMs: number[] }>(tp, 'stats', created.id)
    await call(tp, 'close', created.id)

    // The sans-IO SphinxClient: the same request building without the network, many times,
    // in the full build and (if built) the core-only build.
    const me = '16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF'
    const tcp = pool.nodes[0]!.multiaddrs[0]!
    const sphinxOptions = {
      peerId: me,
      address: `${tcp}/p2p-circuit/p2p/${me}`,
      mixnodes: pool.nodes.map((n) => ({ peerId: n.peer_id, multiaddrs: n.multiaddrs, mixPublicKey: n.mix_public_key }))
    }
    const builds = [['full', '/pkg/wasm/mix_wasm.js'], ['core', '/pkg/wasm-core/mix_wasm.js']] as const
    for (const [[label, url], format] of builds.flatMap((b) => (['lip183', 'v039'] as const).map((f) => [b, f] as const))) {
      if (label === 'core' && !coreBuilt) continue
      const ms = await inPage<number[]>(tp, `(async () => {
        const m = await import(${JSON.stringify(url)});
        await m.default();
        const client = new m.SphinxClient(${JSON.stringify({ ...sphinxOptions, format })});
        const message = { payload: new Uint8Array(1024).fill(97), contentTopic: ${JSON.stringify(CONTENT_TOPIC)} };
        const times = [];
        for (let i = 0; i < ${CORE_N}; i++) {
          const t0 = performance.now();
          const r = client.buildLightpush('/waku/2/rs/${pool.cluster_id}/0', message, { surbs: 1 });
          times.push(performance.now() - t0);
          if (r.packets.length !== 1 || r.packets[0].packet.length !== 4608) throw new Error('bad packet');
        }
        client.free();
        return times;
      })()`)
      ms.sort((a, b) => a - b)
      console.log(`sans-IO build (${label} wasm, ${format}, lightpush request of 1 KiB with 1 SURB, ${ms.length} runs) ms: p50 ${fmt(quantile(ms, 0.5))} p95 ${fmt(quantile(ms, 0.95))} p99 ${fmt(quantile(ms, 0.99))} max ${fmt(ms.at(-1) ?? Number.NaN)}`)
    }
    await tp.close()

    e2e.sort((a, b) => a - b)
    const build = [...stats.buildMs].sort((a, b) => a - b)
    const open = [...stats.openMs].sort((a, b) => a - b)
    console.log(`ok ${e2e.length}, failed ${failed}; stats sent=${stats.sent} replies=${stats.replies} timeouts=${stats.timeouts}`)
    console.log(`e2e latency ms: p50 ${fmt(quantile(e2e, 0.5))} p95 ${fmt(quantile(e2e, 0.95))} p99 ${fmt(quantile(e2e, 0.99))} max ${fmt(e2e.at(-1) ?? Number.NaN)}`)
    console.log(`buildMs (${build.length} samples): p50 ${fmt(quantile(build, 0.5))} p99 ${fmt(quantile(build, 0.99))}`)
    console.log(`openMs (${open.length} samples): p50 ${fmt(quantile(open, 0.5))} p99 ${fmt(quantile(open, 0.99))}`)
  } finally {
    await h.close()
  }
  sizes(WASM_DIR, 'full')
  sizes(WASM_CORE_DIR, 'core')
  if (failed > 0) process.exitCode = 1
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
