// Shared setup of the browser tests: check the built package is there, build the pages,
// serve js/ and the pages, launch Chromium.
import { existsSync } from 'node:fs'
import path from 'node:path'
import type { Browser } from 'playwright-core'

import { launch } from './browser.js'
import type { LaunchOptions } from './browser.js'
import { buildPage, PAGES_OUT, writeHtml } from './pages.js'
import { DIST, JS_ROOT, WASM_DIR } from './paths.js'
import { serve } from './server.js'
import type { Mount, StaticServer } from './server.js'

export function requireBuiltPackage (): void {
  for (const f of [path.join(DIST, 'index.js'), path.join(DIST, 'waku.js')]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` in js/ first`)
  }
  for (const f of ['mix_wasm.js', 'mix_wasm_bg.wasm']) {
    if (!existsSync(path.join(WASM_DIR, f))) {
      throw new Error(`${path.join(WASM_DIR, f)} is missing: build the wasm module first (mix-wasm/build.sh)`)
    }
  }
}

export interface Harness {
  server: StaticServer
  browser: Browser
  close: () => Promise<void>
}

/**
 * Builds the given page entries (`[name, mode]`), writes an HTML page for each and starts the
 * server (`/pkg/` = js/, `/pages/` = the built pages, plus `extraMounts`) and Chromium.
 */
export async function startHarness (pages: Array<[string, 'native' | 'bundled']>, extraMounts: Mount[] = [], launchOptions: LaunchOptions = {}): Promise<Harness> {
  requireBuiltPackage()
  for (const [entry, mode] of pages) {
    await buildPage(entry, mode)
    await writeHtml(entry, entry)
  }
  const server = await serve({
    mounts: [
      { prefix: '/pkg/dist/', dir: DIST },
      { prefix: '/pkg/wasm/', dir: WASM_DIR },
      { prefix: '/pages/', dir: PAGES_OUT },
      ...extraMounts
    ],
    files: { '/favicon.ico': { body: '', type: 'image/x-icon' } }
  })
  let browser: Browser
  try {
    browser = await launch(launchOptions)
  } catch (err) {
    await server.close()
    throw err
  }
  return {
    server,
    browser,
    close: async () => {
      await browser.close().catch(() => {})
      await server.close()
    }
  }
}

export { JS_ROOT }
