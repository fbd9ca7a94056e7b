// A small dapp: publish a Waku message with lightpush through the mix network.
//
// - the pool (mix nodes and their keys) comes from a pool file: `pool.json` next to the page
//   (as `mix-relay testnet --pool-file` writes it), or `?pool=<url>` on the same origin;
// - the gateway is the pool's first WebSocket address, or `?bootstrap=<ws multiaddr>`;
// - the pool and the gateway are trust anchors: a crafted link that picks them routes the user
//   through the attacker's nodes. So a pool on another origin, or a gateway from the link, is
//   used only once the user confirms it (audit F19); apps should not take them from URLs at all.
// - the message is encoded by js-waku's own encoder and sent with the js-waku–shaped adapter.
import { createEncoder, utils } from '@waku/sdk'
import { initAsync, MixClient, MixError } from '@mix-rs/mix'
import type { PoolFile } from '@mix-rs/mix'
import { createMixLightPush } from '@mix-rs/mix/waku'
import type { MixLightPush } from '@mix-rs/mix/waku'

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`#${id} missing`)
  return el as T
}

const ui = {
  poolUrl: $<HTMLInputElement>('pool-url'),
  bootstrap: $<HTMLInputElement>('bootstrap'),
  contentTopic: $<HTMLInputElement>('content-topic'),
  connect: $<HTMLButtonElement>('connect'),
  conn: $('conn'),
  message: $<HTMLTextAreaElement>('message'),
  send: $<HTMLButtonElement>('send'),
  limit: $('limit'),
  statusCode: $('status-code'),
  statusText: $('status-text'),
  latency: $('latency'),
  reply: $('reply'),
  log: $('log')
}

function log (line: string): void {
  const t = new Date().toISOString().slice(11, 23)
  ui.log.textContent = `${t} ${line}\n${ui.log.textContent ?? ''}`.slice(0, 20_000)
}

function describe (err: unknown): string {
  if (err instanceof MixError) return `${err.code}: ${err.message}`
  return err instanceof Error ? err.message : String(err)
}

const params = new URLSearchParams(location.search)

/** A trust anchor from the link, if the user confirms it (`null` otherwise). */
function confirmed (what: string, value: string | null): string | null {
  if (value === null) return null
  const ok = confirm(`This link asks to use ${what}:\n\n${value}\n\nWhoever controls it can see what you send and to whom. Use it only if you trust it.`)
  return ok ? value : null
}

function linkedPool (): string | null {
  const value = params.get('pool')
  if (value === null) return null
  let url: URL
  try {
    url = new URL(value, location.href)
  } catch {
    return null
  }
  return url.origin === location.origin ? url.href : confirmed('the mix node pool at', url.href)
}

ui.poolUrl.value = linkedPool() ?? new URL('pool.json', location.href).href
if (params.has('topic')) ui.contentTopic.value = params.get('topic') ?? ''

let pool: PoolFile | undefined
let client: MixClient | undefined
let lightPush: MixLightPush | undefined
let connecting: Promise<MixClient> | undefined

const wasmReady = initAsync()

async function loadPool (): Promise<PoolFile> {
  const res = await fetch(ui.poolUrl.value, { cache: 'no-store' })
  if (!res.ok) throw new Error(`pool file ${ui.poolUrl.value}: HTTP ${res.status}`)
  const p = await res.json() as PoolFile
  if (!Array.isArray(p.nodes) || p.nodes.length === 0) throw new Error('the pool file has no nodes')
  pool = p
  if (ui.bootstrap.value === '') {
    ui.bootstrap.value = confirmed('the gateway relay', params.get('bootstrap')) ?? p.nodes.flatMap((n) => n.multiaddrs).find((a) => a.includes('/ws/')) ?? ''
  }
  log(`pool: ${p.nodes.length} mix nodes, cluster ${p.cluster_id ?? 2}, shards ${JSON.stringify(p.shards ?? [0])}`)
  return p
}

function pubsubRouting (p: PoolFile): ReturnType<typeof utils.createRoutingInfo> {
  return utils.createRoutingInfo({ clusterId: p.cluster_id ?? 2 }, { shardId: p.shards?.[0] ?? 0 })
}

function showLimit (): void {
  if (client === undefined || pool === undefined) return
  try {
    const max = client.maxLightpushPayload({ contentTopic: ui.contentTopic.value, pubsubTopic: pubsubRouting(pool).pubsubTopic })
    ui.limit.textContent = `≈ ${max} bytes fit in one packet`
  } catch (err) {
    ui.limit.textContent = describe(err)
  }
}

async function connect (): Promise<MixClient> {
  if (client !== undefined && !client.closed) return client
  if (connecting !== undefined) return await connecting
  connecting = (async () => {
    ui.conn.textContent = 'connecting…'
    try {
      await wasmReady
      const p = pool ?? await loadPool()
      const t0 = performance.now()
      const c = await MixClient.create({
        bootstrap: [ui.bootstrap.value.trim()],
        mixnodes: p.nodes,
        clusterId: p.cluster_id ?? 2
      })
      c.addEventListener('reservation', (ev) => log(`reservation at ${ev.detail.relay}: ${ev.detail.address}`))
      c.addEventListener('reservation-lost', (ev) => log(`reservation lost at ${ev.detail.relay}`))
      c.addEventListener('disconnected', (ev) => log(`disconnected from ${ev.detail.peerId}`))
      c.addEventListener('close', () => { ui.conn.textContent = 'closed' })
      client = c
      lightPush = createMixLightPush(c)
      ui.conn.textContent = `connected in ${(performance.now() - t0).toFixed(0)} ms as ${c.peerId}`
      ui.conn.dataset.connected = 'true'
      log(`replies come back to ${c.circuitAddress}`)
      showLimit()
      return c
    } catch (err) {
      ui.conn.textContent = `not connected: ${describe(err)}`
      throw err
    } finally {
      connecting = undefined
    }
  })()
  return await connecting
}

async function send (): Promise<void> {
  ui.send.disabled = true
  ui.statusCode.textContent = '…'
  delete ui.statusCode.dataset.ok
  ui.statusText.textContent = ''
  ui.reply.textContent = ''
  ui.latency.textContent = '–'
  try {
    await connect()
    if (lightPush === undefined || pool === undefined) throw new Error('not connected')
    const encoder = createEncoder({ contentTopic: ui.contentTopic.value, routingInfo: pubsubRouting(pool) })
    const payload = new TextEncoder().encode(ui.message.value)
    const t0 = performance.now()
    const result = await lightPush.send(encoder, { payload })
    const ms = performance.now() - t0
    ui.latency.textContent = `${ms.toFixed(0)} ms`
    const response = result.responses[0]
    const failure = result.failures[0]
    if (result.successes.length > 0 && response !== undefined) {
      ui.statusCode.textContent = String(response.statusCode)
      ui.statusCode.dataset.ok = 'true'
      ui.statusText.textContent = `published by ${response.servicePeerId} to ${response.relayPeerCount ?? 0} relay peer(s)`
    } else {
      ui.statusCode.textContent = response !== undefined ? String(response.statusCode) : 'failed'
      ui.statusCode.dataset.ok = 'false'
      ui.statusText.textContent = failure !== undefined ? `${failure.error}${failure.cause !== undefined ? ` (${describe(failure.cause)})` : ''}` : ''
    }
    ui.reply.textContent = JSON.stringify({
      successes: result.successes.map(String),
      failures: result.failures.map((f) => ({ error: f.error, peerId: f.peerId?.toString(), statusCode: f.statusCode, cause: f.cause?.code })),
      responses: result.responses
    }, null, 2)
    log(`sent ${payload.length} bytes: ${ui.statusCode.textContent} in ${ms.toFixed(0)} ms`)
  } catch (err) {
    ui.statusCode.textContent = 'error'
    ui.statusCode.dataset.ok = 'false'
    ui.statusText.textContent = describe(err)
    log(`send failed: ${describe(err)}`)
  } finally {
    ui.send.disabled = false
  }
}

ui.connect.addEventListener('click', () => { void connect().catch(() => {}) })
ui.send.addEventListener('click', () => { void send() })
ui.contentTopic.addEventListener('change', showLimit)
ui.poolUrl.addEventListener('change', () => {
  pool = undefined
  ui.bootstrap.value = ''
  void loadPool().catch((err: unknown) => log(describe(err)))
})

void loadPool().catch((err: unknown) => log(describe(err)))
