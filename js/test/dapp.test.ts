// The example Vite dapp (examples/dapp) as a user gets it: `vite build`, served statically with
// the testnet's pool.json next to it, driven in headless Chromium: click Send → 200.
// This is also the "importable by a Vite app" test of the package (linked with file:../../js).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

import { launch, openPage } from './support/browser.js'
import type { TestPage } from './support/browser.js'
import { DAPP_ROOT, RESULTS } from './support/paths.js'
import { loadPool } from './support/pool.js'
import type { Pool } from './support/pool.js'
import { serve } from './support/server.js'
import type { StaticServer } from './support/server.js'
import { requireBuiltPackage } from './support/setup.js'
import type { Browser } from 'playwright-core'

const OUT = path.join(RESULTS, 'dapp-dist')

function run (cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`)
  }
  const tail = `${r.stdout}${r.stderr}`.trim().split('\n').slice(-8)
  for (const line of tail) console.log(`    | ${line}`)
}

describe('example dapp (Vite build) in Chromium', { timeout: 600_000 }, () => {
  let pool: Pool
  let server: StaticServer
  let browser: Browser
  let tp: TestPage

  before(async () => {
    pool = loadPool()
    requireBuiltPackage()
    if (!existsSync(path.join(DAPP_ROOT, 'node_modules', '.bin', 'vite'))) {
      console.log('    examples/dapp/node_modules missing: npm ci')
      run('npm', ['ci', '--no-audit', '--no-fund'], DAPP_ROOT)
    }
  })

  after(async () => {
    await tp?.close()
    await browser?.close()
    await server?.close()
  })

  test('vite build of the dapp bundles the package and emits the wasm asset', () => {
    run(path.join(DAPP_ROOT, 'node_modules', '.bin', 'vite'), ['build', '--outDir', OUT, '--emptyOutDir'], DAPP_ROOT)
    const assets = readdirSync(path.join(OUT, 'assets'))
    const wasm = assets.filter((f) => f.endsWith('.wasm'))
    assert.equal(wasm.length, 1, `one wasm asset: ${assets.join(', ')}`)
    const js = assets.filter((f) => f.endsWith('.js'))
    assert.ok(js.some((f) => readFileSync(path.join(OUT, 'assets', f), 'utf8').includes(wasm[0]!)), 'the bundle references the hashed wasm asset')
  })

  test('click Send → the page shows 200', async () => {
    server = await serve({
      mounts: [{ prefix: '/', dir: OUT }],
      files: {
        '/pool.json': { body: readFileSync(process.env.MIX_POOL_FILE!, 'utf8'), type: 'application/json' },
        '/favicon.ico': { body: '', type: 'image/x-icon' }
      }
    })
    browser = await launch()
    tp = await openPage(browser, `${server.url}/`)
    const page = tp.page
    await page.waitForFunction(() => (document.getElementById('bootstrap') as HTMLInputElement | null)?.value.includes('/ws/'), undefined, { timeout: 30_000 })
    const bootstrap = await page.inputValue('#bootstrap')
    assert.ok(pool.nodes.some((n) => n.multiaddrs.includes(bootstrap)), `bootstrap ${bootstrap} is from pool.json`)
    await page.fill('#message', `hello from the example dapp ${Date.now()}`)
    const t0 = Date.now()
    await page.click('#send')
    await page.waitForFunction(() => {
      const t = document.getElementById('status-code')?.textContent ?? ''
      return t !== '' && t !== '…' && t !== '–'
    }, undefined, { timeout: 60_000 })
    const status = await page.textContent('#status-code')
    const text = await page.textContent('#status-text')
    const latency = await page.textContent('#latency')
    console.log(`    status ${status} ${text} (${latency}; ${Date.now() - t0} ms incl. connecting)`)
    await page.screenshot({ path: path.join(RESULTS, 'dapp.png'), fullPage: true })
    assert.equal(status, '200', `${text}\n${tp.logs.slice(-20).join('\n')}`)
    assert.equal(await page.getAttribute('#status-code', 'data-ok'), 'true')
    const wasmHits = [...server.hits.entries()].filter(([p]) => p.endsWith('.wasm'))
    assert.equal(wasmHits.length, 1, `the hashed wasm asset was fetched: ${JSON.stringify(wasmHits)}`)

    // A second message on the same connection.
    await page.fill('#message', `second message ${Date.now()}`)
    await page.click('#send')
    await page.waitForFunction(() => {
      const t = document.getElementById('status-code')?.textContent ?? ''
      return t !== '' && t !== '…' && t !== '–'
    }, undefined, { timeout: 60_000 })
    assert.equal(await page.textContent('#status-code'), '200')
  })
})
