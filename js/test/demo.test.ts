// The README's demo as a newcomer meets it: the mix-demo binary (which `scripts/demo.sh` runs)
// starts its own testnet and serves the page; headless Chromium opens the URL it prints, types
// a message, clicks Send, and must see the lightpush status, the three hops, the latency of
// each phase, and the message on the Waku network. A screenshot is saved as a test artifact
// (js/test-results/demo-page.png).
//
// Environment: MIX_DEMO (the binary; default target/debug/mix-demo, which `cargo build -p
// mix-demo` makes).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import type { Browser } from 'playwright-core'

import { launch, openPage } from './support/browser.js'
import type { TestPage } from './support/browser.js'
import { JS_ROOT, REPO_ROOT, RESULTS } from './support/paths.js'
import { requireBuiltPackage } from './support/setup.js'

const BIN = process.env.MIX_DEMO ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO_ROOT, 'target'), 'debug', 'mix-demo')
const SCREENSHOT = path.join(RESULTS, 'demo-page.png')

interface PoolFile { cluster_id: number; nodes: Array<{ peer_id: string }> }

interface Demo {
  proc: ChildProcessWithoutNullStreams
  url: string
  output: () => string
}

/** Starts mix-demo on a free port and resolves with the URL of its "open this URL" line. */
async function startDemo (): Promise<Demo> {
  const proc = spawn(BIN, ['--port', '0', '--js-dir', JS_ROOT], { env: { ...process.env, RUST_LOG: 'warn' } })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
  proc.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no URL from mix-demo within 60 s:\n${out}`)) }, 60_000)
    const check = (): void => {
      const m = /Open this URL in a browser:\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    }
    proc.stdout.on('data', check)
    proc.on('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`mix-demo exited (${code ?? signal}) before it was ready:\n${out}`))
    })
  })
  return { proc, url, output: () => out }
}

async function statusShown (tp: TestPage): Promise<void> {
  await tp.page.waitForFunction(() => {
    const state = document.getElementById('state')
    return state !== null && state.className !== 'pending'
  }, undefined, { timeout: 60_000 })
}

describe('the demo page (mix-demo) in Chromium', { timeout: 300_000 }, () => {
  let demo: Demo | undefined
  let browser: Browser | undefined
  let tp: TestPage | undefined

  before(async () => {
    requireBuiltPackage()
    assert.ok(existsSync(BIN), `${BIN} is missing: cargo build -p mix-demo (or set MIX_DEMO)`)
    mkdirSync(RESULTS, { recursive: true })
    const t0 = Date.now()
    demo = await startDemo()
    console.log(`    mix-demo ready in ${Date.now() - t0} ms at ${demo.url}`)
    browser = await launch()
  })

  after(async () => {
    await tp?.close()
    await browser?.close()
    if (demo !== undefined && demo.proc.exitCode === null) {
      const exited = new Promise((resolve) => demo!.proc.on('exit', resolve))
      demo.proc.kill('SIGTERM')
      await exited
    }
  })

  test('the terminal lists the relays and says which URL to open', () => {
    const out = demo!.output()
    assert.match(out, /\[demo\] 5 relays up in [\d.]+ s/)
    for (let i = 0; i < 5; i++) assert.match(out, new RegExp(`relay ${i}  \\S+…\\S+  /ip4/127\\.0\\.0\\.1/tcp/\\d+/ws/p2p/`), `relay ${i} listed`)
  })

  test('type a message, Send: status 200, three hops, latency per phase, seen on Waku', async () => {
    const d = demo!
    const pool = await (await fetch(new URL('pool.json', d.url))).json() as PoolFile
    assert.equal(pool.nodes.length, 5)
    const inPool = (p: string): boolean => pool.nodes.some((n) => n.peer_id === p)

    tp = await openPage(browser!, d.url)
    const page = tp.page
    const t0 = Date.now()
    await page.waitForFunction(() => !(document.getElementById('send') as HTMLButtonElement).disabled, undefined, { timeout: 60_000 })
      .catch((err: unknown) => { throw new Error(`the page did not connect: ${String(err)}\n${tp!.logs.slice(-20).join('\n')}`) })
    console.log(`    page connected in ${Date.now() - t0} ms: ${await page.textContent('#connect-ms')}`)
    assert.equal(await page.textContent('#conn'), 'Connected.')
    assert.match(await page.textContent('#pool-size') ?? '', /^5 relays/)
    assert.match(await page.textContent('#limit') ?? '', /Up to \d+ bytes/)

    const text = `hello from the demo test ${Date.now()}`
    await page.fill('#message', text)
    await page.click('#send')
    await statusShown(tp)
    const state = await page.textContent('#state')
    assert.equal(await page.textContent('#status-code'), '200', `${state}\n${await page.textContent('#error')}\n${tp.logs.slice(-20).join('\n')}`)

    // Three hops out: distinct testnet relays, each shown by name and short peer id.
    const hops = await page.$$eval('#hops li.hop', (lis) => lis.map((li) => ({ id: (li as HTMLElement).dataset.peerId ?? '', text: li.textContent ?? '' })))
    assert.equal(hops.length, 3, JSON.stringify(hops))
    assert.equal(new Set(hops.map((h) => h.id)).size, 3, 'distinct hops')
    for (const h of hops) {
      assert.ok(inPool(h.id), `${h.id} is a testnet relay`)
      assert.match(h.text, /^relay \d \S{6}…\S{6}/, h.text)
      assert.ok(h.text.includes(`${h.id.slice(0, 6)}…${h.id.slice(-6)}`), `short id of ${h.id} in "${h.text}"`)
    }
    assert.match(hops[2]!.text, /exit, lightpush service/)
    const back = await page.$$eval('#reply-hops li.hop', (lis) => lis.map((li) => (li as HTMLElement).dataset.peerId ?? ''))
    assert.equal(back.length, 3, 'the exit and two reply hops')
    assert.equal(back[0], hops[2]!.id, 'the reply starts at the exit')
    assert.ok(back.slice(1).every(inPool) && !back.slice(1).includes(hops[2]!.id), `reply hops ${back.join(' ')}`)

    // Latency per phase: each a number of ms, the total at least the sum of the rest.
    const phase = async (id: string): Promise<number> => {
      const t = await page.textContent(`#phase-${id}`) ?? ''
      const m = /^([\d.]+) ms$/.exec(t)
      assert.ok(m !== null, `#phase-${id} shows ms: "${t}"`)
      return Number(m[1])
    }
    const [build, mixnet, open, other, total] = [await phase('build'), await phase('mixnet'), await phase('open'), await phase('other'), await phase('total')]
    console.log(`    phases: build ${build} ms, mixnet ${mixnet} ms, open ${open} ms, other ${other} ms, total ${total} ms`)
    assert.ok(mixnet > 0 && total >= mixnet, `mixnet ${mixnet} within total ${total}`)
    assert.ok(Math.abs(build + mixnet + open + other - total) < 1, 'the phases add up to the total')

    // The message reached the Waku network: relays report it on their shard, and so does the terminal.
    await page.waitForFunction(() => /received by relay/.test(document.getElementById('waku')?.textContent ?? ''), undefined, { timeout: 10_000 })
    console.log(`    ${await page.textContent('#waku')}`)
    assert.ok(d.output().includes(`Waku: "${text}" published on /waku/2/rs/${pool.cluster_id}/0`), 'the terminal reports the message')
    assert.equal(await page.$$eval('#history li.ok', (lis) => lis.length), 1)

    // The relays' counters show the traffic.
    await page.waitForFunction(() => {
      const cells = Array.from(document.querySelectorAll('#relays tbody tr td:nth-child(3)'), (td) => Number(td.textContent))
      return cells.length === 5 && cells.reduce((a, b) => a + b, 0) >= 5
    }, undefined, { timeout: 10_000 })

    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    console.log(`    screenshot: ${SCREENSHOT}`)
  })

  test('an empty message shows a typed error, and the next message still goes through', async () => {
    const page = tp!.page
    await page.fill('#message', '')
    await page.click('#send')
    await statusShown(tp!)
    assert.equal(await page.isVisible('#error'), true)
    assert.match(await page.textContent('#error') ?? '', /^INVALID_OPTIONS: /)
    assert.equal(await page.$$eval('#history li.failed', (lis) => lis.length), 1)

    await page.fill('#message', `second message ${Date.now()}`)
    await page.click('#send')
    await statusShown(tp!)
    assert.equal(await page.textContent('#status-code'), '200')
    assert.equal(await page.isVisible('#error'), false)
    console.log(`    second message: mixnet ${await page.textContent('#phase-mixnet')}, total ${await page.textContent('#phase-total')}`)
  })
})
