// Headless Chromium (the system's /usr/bin/chromium) through playwright-core.
import { chromium } from 'playwright-core'
import type { Browser, BrowserContext, Page } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run'
]

export interface LaunchOptions {
  /** Keep QUIC on: WebTransport runs over HTTP/3 (the other suites turn QUIC off). */
  quic?: boolean
}

export async function launch (options: LaunchOptions = {}): Promise<Browser> {
  const args = options.quic === true ? ARGS.filter((a) => a !== '--disable-quic') : ARGS
  return await chromium.launch({ executablePath: CHROMIUM, args })
}

export interface TestPage {
  context: BrowserContext
  page: Page
  /** Console lines and page errors, for failure reports. */
  logs: string[]
  close: () => Promise<void>
}

/** A fresh context and page at `url`, with its console captured (and echoed if MIX_TEST_VERBOSE). */
export async function openPage (browser: Browser, url: string, waitFor?: string): Promise<TestPage> {
  const context = await browser.newContext()
  const page = await context.newPage()
  const logs: string[] = []
  const verbose = process.env.MIX_TEST_VERBOSE === '1'
  const record = (line: string): void => {
    logs.push(line)
    if (logs.length > 400) logs.shift()
    if (verbose) console.error(`    [page] ${line}`)
  }
  page.on('console', (m) => record(`${m.type()}: ${m.text()}`))
  page.on('pageerror', (e) => record(`pageerror: ${e.message}`))
  page.on('requestfailed', (r) => record(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`))
  page.on('worker', (w) => {
    w.on('console', (m) => record(`worker ${m.type()}: ${m.text()}`))
  })
  await page.goto(url)
  if (waitFor !== undefined) await page.waitForFunction(waitFor, undefined, { timeout: 30_000 })
  return { context, page, logs, close: async () => { await context.close() } }
}

/**
 * Evaluates a JS expression in the page and returns its (awaited, JSON-able) value. On failure
 * the error carries the page's last console lines. Expressions are strings (not functions) so
 * that no transpiler helper leaks into the serialised code.
 */
export async function inPage<T> (tp: TestPage, expr: string): Promise<T> {
  try {
    return await tp.page.evaluate(expr) as T
  } catch (err) {
    const tail = tp.logs.slice(-40).map((l) => `      ${l}`).join('\n')
    const msg = err instanceof Error ? err.message : String(err)
    throw new Error(`${msg}\n    page console (last lines):\n${tail}`, { cause: err })
  }
}

/** `name(args…)` on the page's `mixTest` object, args as JSON. */
export async function call<T> (tp: TestPage, name: string, ...args: unknown[]): Promise<T> {
  const list = args.map((a) => JSON.stringify(a)).join(', ')
  return await inPage<T>(tp, `globalThis.mixTest.${name}(${list})`)
}
