// Page side of the browser tests: the built package, loaded unbundled from /pkg/dist, driven
// by the Node side through `globalThis.mixTest` (see test/support/browser.ts `call`).
// Every function returns JSON-able data.
import { initAsync, isInitialised, LIGHTPUSH_CODEC, MixClient, MixError, MIX_ERROR_CODES } from '@mix-rs/mix'
import type { LightPushResponse, MixClientOptions, SendOptions } from '@mix-rs/mix'

export interface ErrorInfo {
  thrown: true
  isMixError: boolean
  isError: boolean
  name: string
  code?: string
  message: string
  maxLen?: number
  hasStack: boolean
}

export function errorInfo (e: unknown): ErrorInfo {
  const err = e as Partial<MixError> & { name?: string; message?: string; stack?: string }
  const info: ErrorInfo = {
    thrown: true,
    isMixError: e instanceof MixError,
    isError: e instanceof Error,
    name: String(err?.name),
    message: String(err?.message ?? e),
    hasStack: typeof err?.stack === 'string' && err.stack.length > 0
  }
  if (err?.code !== undefined) info.code = err.code
  if (err?.maxLen !== undefined) info.maxLen = err.maxLen
  return info
}

async function capture<T> (f: () => Promise<T> | T): Promise<T | ErrorInfo> {
  try {
    return await f()
  } catch (e) {
    return errorInfo(e)
  }
}

const clients = new Map<number, MixClient>()
const events = new Map<number, Array<{ type: string; detail: unknown; at: number }>>()
let nextId = 1

function client (id: number): MixClient {
  const c = clients.get(id)
  if (c === undefined) throw new Error(`no client #${id}`)
  return c
}

export interface PayloadSpec {
  /** UTF-8 text, or */
  text?: string
  /** `size` random bytes. */
  size?: number
}

export function makePayload (spec: PayloadSpec): Uint8Array {
  if (spec.text !== undefined) return new TextEncoder().encode(spec.text)
  const out = new Uint8Array(spec.size ?? 0)
  for (let off = 0; off < out.length; off += 65536) crypto.getRandomValues(out.subarray(off, off + 65536))
  return out
}

// ---- minimal protobuf for the raw lightpush test -------------------------------------------

function varint (n: number | bigint): number[] {
  let v = BigInt(n)
  const out: number[] = []
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return out
}

function field (no: number, wire: number): number[] {
  return varint((no << 3) | wire)
}

function bytesField (no: number, b: Uint8Array): number[] {
  return [...field(no, 2), ...varint(b.length), ...b]
}

function concat (...parts: Array<number[] | Uint8Array>): Uint8Array {
  const len = parts.reduce((n, p) => n + p.length, 0)
  const out = new Uint8Array(len)
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

/** `uvarint(len) ‖ LightPushRequest v3` with the given WakuMessage fields. */
export function encodeLightPushFrame (requestId: string, pubsubTopic: string, contentTopic: string, payload: Uint8Array): Uint8Array {
  const te = new TextEncoder()
  const ts = BigInt(Date.now()) * 1_000_000n
  const msg = concat(
    bytesField(1, payload),
    bytesField(2, te.encode(contentTopic)),
    field(10, 0), varint(ts << 1n) // sint64, zig-zag (ts > 0)
  )
  const req = concat(bytesField(1, te.encode(requestId)), bytesField(20, te.encode(pubsubTopic)), bytesField(21, msg))
  return concat(varint(req.length), req)
}

/** Decodes `uvarint(len) ‖ LightPushResponse v3`. */
export function decodeLightPushFrame (frame: Uint8Array): { requestId?: string; statusCode?: number; statusDesc?: string; relayPeerCount?: number } {
  let pos = 0
  const readVarint = (): bigint => {
    let shift = 0n
    let v = 0n
    for (;;) {
      const b = frame[pos++]
      if (b === undefined) throw new Error('truncated varint')
      v |= BigInt(b & 0x7f) << shift
      if ((b & 0x80) === 0) return v
      shift += 7n
    }
  }
  const len = Number(readVarint())
  const end = pos + len
  if (end !== frame.length) throw new Error(`frame length ${len} does not match ${frame.length - pos} bytes`)
  const out: { requestId?: string; statusCode?: number; statusDesc?: string; relayPeerCount?: number } = {}
  const td = new TextDecoder()
  while (pos < end) {
    const key = Number(readVarint())
    const no = key >> 3
    const wire = key & 7
    if (wire === 0) {
      const v = Number(readVarint())
      if (no === 10) out.statusCode = v
      if (no === 12) out.relayPeerCount = v
    } else if (wire === 2) {
      const l = Number(readVarint())
      const b = frame.subarray(pos, pos + l)
      pos += l
      if (no === 1) out.requestId = td.decode(b)
      if (no === 11) out.statusDesc = td.decode(b)
    } else {
      throw new Error(`unexpected wire type ${wire}`)
    }
  }
  return out
}

// ---- the API the Node side drives ---------------------------------------------------------------

export interface LightPushCall {
  pubsubTopic?: string
  contentTopic: string
  payload: PayloadSpec
  serviceNode?: string
}

const api = {
  codes: MIX_ERROR_CODES,
  isInitialised: () => isInitialised(),

  /** Uses the package before initAsync(). */
  async beforeInit (options: MixClientOptions) {
    return {
      initialised: isInitialised(),
      create: await capture(async () => await MixClient.create(options)),
      // A bad option is still reported as INVALID_OPTIONS, checked before the wasm is touched.
      createBad: await capture(async () => await MixClient.create({} as MixClientOptions))
    }
  },

  /** initAsync(), twice (idempotent: same promise), optionally with a wasm URL. */
  async init (wasmUrl?: string) {
    const a = wasmUrl === undefined ? initAsync() : initAsync(wasmUrl)
    const b = initAsync()
    await a
    return { samePromise: a === b, initialised: isInitialised() }
  },

  async create (options: MixClientOptions, waitForReservationMs = 15_000) {
    const t0 = performance.now()
    const c = await MixClient.create(options)
    const createMs = performance.now() - t0
    const id = nextId++
    clients.set(id, c)
    const seen: Array<{ type: string; detail: unknown; at: number }> = []
    events.set(id, seen)
    for (const type of ['connected', 'disconnected', 'reservation', 'reservation-lost', 'pool', 'close']) {
      c.addEventListener(type, (ev) => {
        seen.push({ type, detail: (ev as CustomEvent).detail, at: performance.now() - t0 })
      })
    }
    const deadline = performance.now() + waitForReservationMs
    while (!seen.some((e) => e.type === 'reservation') && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    return {
      id,
      createMs,
      peerId: c.peerId,
      circuitAddress: c.circuitAddress,
      clusterId: c.clusterId,
      defaultPubsubTopic: c.defaultPubsubTopic,
      events: seen.slice()
    }
  },

  async tryCreate (options: MixClientOptions) {
    return await capture(async () => {
      const c = await MixClient.create(options)
      await c.close()
      return { created: true }
    })
  },

  events: (id: number) => events.get(id) ?? [],

  async lightpush (id: number, call: LightPushCall, options?: SendOptions) {
    const c = client(id)
    const payload = makePayload(call.payload)
    const t0 = performance.now()
    const r = await capture(async () => await c.lightpush({
      ...(call.pubsubTopic !== undefined ? { pubsubTopic: call.pubsubTopic } : {}),
      ...(call.serviceNode !== undefined ? { serviceNode: call.serviceNode } : {}),
      message: { payload, contentTopic: call.contentTopic }
    }, options))
    return { result: r, ms: performance.now() - t0, payloadLen: payload.length }
  },

  maxLightpushPayload: (id: number, params: { contentTopic: string; pubsubTopic?: string; surbs?: number }) =>
    capture(() => client(id).maxLightpushPayload(params)),

  maxMessageLen: (id: number, codec: string, surbs?: number) => capture(() => client(id).maxMessageLen(codec, surbs)),

  /** Raw send of a hand-encoded lightpush v3 request; returns the decoded response. */
  async sendRawLightpush (id: number, pubsubTopic: string, contentTopic: string, text: string, options?: SendOptions) {
    const c = client(id)
    const requestId = `raw-${Math.random().toString(16).slice(2)}`
    const frame = encodeLightPushFrame(requestId, pubsubTopic, contentTopic, new TextEncoder().encode(text))
    const r = await capture(async () => {
      const reply = await c.send(LIGHTPUSH_CODEC, frame, options)
      return { isUint8Array: reply instanceof Uint8Array, len: reply.length, decoded: decodeLightPushFrame(reply) }
    })
    return { requestId, result: r }
  },

  /** send() of `size` bytes (no network unless it fits). */
  async sendBytes (id: number, codec: string, size: number, options?: SendOptions) {
    const c = client(id)
    const before = c.stats().sent
    const t0 = performance.now()
    const r = await capture(async () => (await c.send(codec, new Uint8Array(size), options)).length)
    return { result: r, ms: performance.now() - t0, sentBefore: before, sentAfter: c.stats().sent }
  },

  /** Lightpush of `size` payload bytes; how long it took to fail and whether anything was sent. */
  async oversized (id: number, contentTopic: string, size: number) {
    const c = client(id)
    const before = c.stats().sent
    const t0 = performance.now()
    const r = await capture(async () => await c.lightpush({ message: { payload: new Uint8Array(size), contentTopic } }))
    return { result: r, ms: performance.now() - t0, sentBefore: before, sentAfter: c.stats().sent }
  },

  /** Bad arguments to every method: each must be a MixError INVALID_OPTIONS. */
  async badCalls (id: number) {
    const c = client(id) as unknown as Record<string, (...args: unknown[]) => unknown>
    const m = (name: string, ...args: unknown[]) => capture(async () => await (c[name] as (...a: unknown[]) => unknown).apply(client(id), args))
    return {
      sendNotBytes: await m('send', LIGHTPUSH_CODEC, [1, 2, 3]),
      sendString: await m('send', LIGHTPUSH_CODEC, 'hello'),
      sendNoCodec: await m('send', '', new Uint8Array(1)),
      sendBadSurbs: await m('send', LIGHTPUSH_CODEC, new Uint8Array(1), { surbs: -1 }),
      sendBadTimeout: await m('send', LIGHTPUSH_CODEC, new Uint8Array(1), { timeoutMs: 0 }),
      sendBadRedundancy: await m('send', LIGHTPUSH_CODEC, new Uint8Array(1), { redundancy: 5 }),
      sendBadDestination: await m('send', LIGHTPUSH_CODEC, new Uint8Array(1), { destination: 42 }),
      lightpushNoMessage: await m('lightpush', {}),
      lightpushPayloadString: await m('lightpush', { message: { payload: 'x', contentTopic: '/a/1/b/proto' } }),
      lightpushNoTopic: await m('lightpush', { message: { payload: new Uint8Array(1) } }),
      lightpushBadTimestamp: await m('lightpush', { message: { payload: new Uint8Array(1), contentTopic: '/a/1/b/proto', timestamp: 'now' } }),
      lightpushConflictingService: await m('lightpush', { serviceNode: 'a', message: { payload: new Uint8Array(1), contentTopic: '/a/1/b/proto' } }, { destination: 'b' }),
      maxPayloadNoTopic: await m('maxLightpushPayload', {}),
      constructorDirect: await capture(() => new (MixClient as unknown as new () => unknown)())
    }
  },

  /** Options the TS layer accepts but the wasm layer must reject. */
  async wasmRejects (id: number, pubsubTopic: string, contentTopic: string) {
    const c = client(id)
    return {
      unknownDestination: await capture(async () => await c.lightpush({ pubsubTopic, serviceNode: '16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ', message: { payload: new Uint8Array(4), contentTopic } })),
      garbageDestination: await capture(async () => await c.lightpush({ pubsubTopic, serviceNode: 'not-a-peer-id', message: { payload: new Uint8Array(4), contentTopic } })),
      tooManySurbs: await capture(async () => await c.send(LIGHTPUSH_CODEC, new Uint8Array(4), { surbs: 99 }))
    }
  },

  stats: (id: number) => client(id).stats(),

  /** A lightpush in flight while close() runs, then calls after close. */
  async closeScenario (id: number, contentTopic: string) {
    const c = client(id)
    const inflight = capture(async () => await c.lightpush({ message: { payload: new TextEncoder().encode(`in flight at close ${Date.now()}`), contentTopic } }))
    const closeResult = await capture(async () => { await c.close(); return 'closed' })
    const closeAgain = await capture(async () => { await c.close(); return 'closed' })
    return {
      closeResult,
      closeAgain,
      closedFlag: c.closed,
      inflight: await inflight,
      sendAfter: await capture(async () => await c.send(LIGHTPUSH_CODEC, new Uint8Array(8))),
      lightpushAfter: await capture(async () => await c.lightpush({ message: { payload: new Uint8Array(8), contentTopic } })),
      maxAfter: await capture(() => c.maxMessageLen(LIGHTPUSH_CODEC)),
      statsAfter: await capture(() => c.stats()),
      events: (events.get(id) ?? []).map((e) => e.type)
    }
  },

  async close (id: number) {
    await client(id).close()
    clients.delete(id)
  },

  /** Runs test/pages/worker.ts in a module worker; resolves to what it posts back. */
  async inWorker (options: MixClientOptions, contentTopic: string, timeoutMs = 60_000) {
    const w = new Worker('/pages/worker.js', { type: 'module' })
    try {
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('worker timed out')), timeoutMs)
        w.onmessage = (ev) => { clearTimeout(timer); resolve(ev.data) }
        w.onerror = (ev) => { clearTimeout(timer); reject(new Error(`worker error: ${ev.message}`)) }
        w.postMessage({ options, contentTopic })
      })
    } finally {
      w.terminate()
    }
  }
}

export type MixTestApi = typeof api
export type { LightPushResponse }

;(globalThis as unknown as { mixTest: MixTestApi }).mixTest = api
