/**
 * {@link MixClient}: a browser (or Web Worker) sender on a libp2p mix network.
 *
 * @module
 */

import type * as raw from '../wasm/mix_wasm.js'
import { invalid, MixError, toMixError } from './errors.js'
import { DEFAULT_CLUSTER_ID, DEFAULT_SHARD, STATIC_SHARDING_PREFIX } from './generated.js'
import { bindings } from './wasm.js'

type WasmMixClient = raw.WasmMixClient

/** Log verbosity of the wasm module (written to the console). */
export type LogLevel = 'off' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

const LOG_LEVELS: ReadonlySet<string> = new Set(['off', 'error', 'warn', 'info', 'debug', 'trace'])

/**
 * The wire format of a mix network, named as the relay's `mix-relay --mix-format` names it:
 * `'lip183'`, the current upstream format (LIP-183: LIONESS payload), or `'v039'`, the format
 * deployed with logos-delivery v0.39 (AES-CTR payload). Every node on a path must speak it.
 */
export type MixFormat = 'lip183' | 'v039'

/** The wire formats, the default first. */
export const MIX_FORMATS: readonly MixFormat[] = ['lip183', 'v039']

/** A mix node of the pool (camelCase form). */
export interface MixNodeInfo {
  /** Its libp2p peer id (secp256k1, `16Uiu2…`). */
  peerId: string
  /** Its multiaddrs (`/p2p/<peerId>` may be included). */
  multiaddrs: string[]
  /** Its X25519 mix public key: 64 hex characters. */
  mixPublicKey: string
}

/** A mix node as written in a pool file (`mix-relay testnet --pool-file`). */
export interface PoolFileNode {
  peer_id: string
  multiaddrs: string[]
  mix_public_key: string
  /** `<multiaddr>:<mix key hex>`, nwaku's `--mixnode` form (not used here). */
  mixnode?: string
}

/** A pool file, as `mix-relay testnet --pool-file` writes it. */
export interface PoolFile {
  /** The wire format its nodes speak (files written before there were two have none: `'lip183'`). */
  format?: MixFormat
  cluster_id?: number
  shards?: number[]
  nodes: PoolFileNode[]
}

/** Options of {@link MixClient.create}. */
export interface MixClientOptions {
  /**
   * Gateway relays to connect to, as WebTransport or WebSocket multiaddrs, each ending in
   * `/p2p/<peer id>`: e.g. `/ip4/127.0.0.1/udp/4002/quic-v1/webtransport/certhash/uEi…/p2p/16Uiu2…`
   * or `/ip4/127.0.0.1/tcp/4001/ws/p2p/16Uiu2…`. Entries naming the same relay are alternatives:
   * its WebTransport addresses are tried first, its WebSocket ones if those fail. The first relay
   * that connects and grants a circuit relay reservation becomes the gateway; the others are
   * fallbacks, tried in the order of their first entry.
   */
  bootstrap: readonly string[]
  /**
   * A fixed mix node pool (at least 3 nodes), in camelCase or pool-file (snake_case) form, or
   * mixed. Its nodes never expire. Absent or empty: the client finds the pool through Waku
   * rendezvous at its gateway (namespace `rs/<clusterId>/mix`), keeps it fresh on nwaku's
   * lookup schedule, and reports changes as `pool` events.
   */
  mixnodes?: ReadonlyArray<MixNodeInfo | PoolFileNode>
  /**
   * Waku cluster id: the default pubsub topic is `/waku/2/rs/<clusterId>/0`, and without
   * `mixnodes` the pool is looked up in the rendezvous namespace `rs/<clusterId>/mix`. Default 2.
   */
  clusterId?: number
  /**
   * How long {@link MixClient.create} may take, in ms: reaching a gateway, its reservation and,
   * without `mixnodes`, the first rendezvous lookup. Default 10000.
   */
  connectTimeoutMs?: number
  /** Wasm log verbosity (to the console). Default `'warn'`. */
  logLevel?: LogLevel
  /**
   * The network's wire format: `'lip183'` (default) or `'v039'`, as the relays' `--mix-format`.
   * It must match the relays: a client of another format gets no reply (`TIMEOUT`) or
   * `INVALID_REPLY`. {@link optionsFromPool} takes it from the pool file's `format`.
   */
  format?: MixFormat
  /**
   * The mean, in ms, of the random (exponential) wait before each packet is written to its first
   * hop, as upstream's LIP-183 senders hold theirs (so the write time does not give away when
   * the request was made). Default 100 with `'lip183'`, 0 with `'v039'`; 0 = none; at most 65535.
   * It adds to each request's latency.
   */
  senderHoldMs?: number
}

/** Per-request options of {@link MixClient.send} and the lightpush methods. */
export interface SendOptions {
  /** SURBs (single-use reply blocks) per packet: how many replies may come back. Default 1.
   * With 0 nothing comes back: `send` resolves to an empty array once the packets are out. */
  surbs?: number
  /** How long to wait for the reply, in ms. Default 30000. */
  timeoutMs?: number
  /** Copies of the request, each on its own path; the first reply wins. 1 to 4, default 1. */
  redundancy?: number
  /**
   * Peer id of the node that handles the request (exit == destination: the third hop runs it
   * through its own protocol handler). It must be in the pool. Default: a random pool node.
   */
  destination?: string
}

/** A Waku message (14/WAKU2-MESSAGE) to publish with lightpush. */
export interface WakuMessage {
  payload: Uint8Array
  contentTopic: string
  /** Unix time in nanoseconds (`bigint`), or a `Date`. Stamped with the current time if absent. */
  timestamp?: bigint | Date
  meta?: Uint8Array
  ephemeral?: boolean
  version?: number
  /** The RLN proof, protobuf-encoded. */
  rateLimitProof?: Uint8Array
}

/** A lightpush request for {@link MixClient.lightpush}. */
export interface LightPushRequest {
  /** Default: `/waku/2/rs/<clusterId>/0`. */
  pubsubTopic?: string
  message: WakuMessage
  /**
   * Peer id of the lightpush service node (the third hop). Same as `options.destination`.
   * Default: a random pool node.
   */
  serviceNode?: string
}

/** The service node's answer (a decoded lightpush v3 response). */
export interface LightPushResponse {
  /** The request id the service echoed (`"N/A"` when it could not decode the request). */
  requestId: string
  /** 200 on success; otherwise a lightpush v3 status code (400, 413, 420, 421, 429, 500, 503, 504, 505). */
  statusCode: number
  statusDesc?: string
  /** How many relay peers the service published the message to. */
  relayPeerCount?: number
  /** The peer id of the service node that answered. */
  servicePeerId: string
  /** The hops the request and its reply took, and the time each phase took. */
  trace?: LightPushTrace
}

/**
 * Where an answered request went and how long each phase took, measured in the client. Only
 * this client knows it: no relay sees more than its neighbours.
 */
export interface LightPushTrace {
  /** Out, as peer ids: two intermediates, then the exit (the service node). */
  hops: string[]
  /** Back, as peer ids: the two intermediates the answering SURB went through. */
  replyHops: string[]
  /** Choosing the path and building the Sphinx packet, in ms. */
  buildMs: number
  /** From handing the packet to the first hop until the reply arrived (three hops out, the service, three hops back), in ms. */
  mixnetMs: number
  /** Opening the reply, in ms. */
  openMs: number
}

/** Counters and recent timings of a client. */
export interface MixStats {
  /** Requests sent. */
  sent: number
  /** Replies received. */
  replies: number
  /** Requests that timed out. */
  timeouts: number
  /** Mix nodes in the pool now (discovered pools grow and shrink; see the `pool` event). */
  poolSize: number
  /** Time to build each request's packets (ms), the last ≤ 1024 requests. */
  buildMs: number[]
  /** Time to open each reply (ms), the last ≤ 1024 replies. */
  openMs: number[]
}

/**
 * Why a node left the pool: its rendezvous record was not refreshed in time (`expired`), it
 * could not be dialed (`failed`; it stays out for a while), requests through it kept timing
 * out (`strikes`), or a reason this version does not name (`other`).
 */
export type PoolRemovalReason = 'expired' | 'failed' | 'strikes' | 'other'

/** The `detail` of a `pool` event. */
export interface PoolEventDetail {
  /** Mix nodes in the pool now. */
  size: number
  /** Peer ids that joined since the last `pool` event. */
  added: string[]
  /** Peer ids that left since the last `pool` event, and why. */
  removed: Array<{ peerId: string; reason: PoolRemovalReason }>
  /**
   * True while the pool holds fewer than 4 nodes (nwaku's minimum): paths through so few
   * nodes are easy to guess. Below 3, requests fail with `NO_ROUTE`.
   */
  belowMinimum: boolean
}

/** The `detail` of each event a {@link MixClient} dispatches. */
export interface MixClientEventMap {
  /**
   * A connection to a peer (gateway or mix node) opened. `address` is its remote multiaddr, and
   * shows the transport: `…/quic-v1/webtransport/…` (WebTransport) or `…/ws/…`, `…/wss/…`
   * (WebSocket); just `/p2p/<peer id>` for a reply's last hop, which reaches this client through
   * the gateway's circuit.
   */
  connected: { peerId: string; address: string }
  /** A connection to a peer closed. */
  disconnected: { peerId: string }
  /** The gateway `relay` granted a circuit reservation; replies reach us at `address`. */
  reservation: { relay: string; address: string }
  /** The reservation at `relay` was lost (replies cannot reach us until a new one). */
  'reservation-lost': { relay: string }
  /**
   * The pool changed: nodes found by a rendezvous lookup, or dropped. Also dispatched once
   * with the first pool (the fixed `mixnodes`, or the first lookup's result).
   */
  pool: PoolEventDetail
  /** The client was closed; no more events follow. */
  close: Record<string, never>
}

/** The events of a {@link MixClient}. */
export type MixClientEventType = keyof MixClientEventMap

type Listener<K extends MixClientEventType> = (this: MixClient, ev: CustomEvent<MixClientEventMap[K]>) => unknown

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface MixClient {
  addEventListener<K extends MixClientEventType>(type: K, listener: Listener<K>, options?: boolean | AddEventListenerOptions): void
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void
  removeEventListener<K extends MixClientEventType>(type: K, listener: Listener<K>, options?: boolean | EventListenerOptions): void
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void
}

const asyncDispose: typeof Symbol.asyncDispose =
  typeof Symbol.asyncDispose === 'symbol'
    ? Symbol.asyncDispose
    : (Symbol.for('Symbol.asyncDispose') as typeof Symbol.asyncDispose)

const PASS = Symbol('MixClient.create')

/**
 * A sender on a libp2p mix network: connects to a gateway relay over WebTransport (or over
 * WebSocket, where the relay offers no WebTransport address or it fails), holds a circuit
 * reservation there (the address its SURB replies come back to), and sends Sphinx packets
 * through three hops of the pool.
 *
 * Create with `await MixClient.create(options)` after `await initAsync()`. Events are
 * `CustomEvent`s (see {@link MixClientEventMap}); listeners added in the same tick as `create`
 * resolves see every event since the start, including the first `reservation` and `pool`.
 *
 * Byte results (`Uint8Array`) are fresh copies owned by the caller; byte arguments are copied
 * into wasm memory, so the caller may reuse them as soon as the call returns.
 */
export class MixClient extends EventTarget {
  readonly #inner: WasmMixClient
  readonly #clusterId: number
  #closing: Promise<void> | undefined

  /** Use {@link MixClient.create}. */
  private constructor (pass: symbol, inner: WasmMixClient, clusterId: number) {
    super()
    if (pass !== PASS) {
      throw new MixError('INVALID_OPTIONS', 'use `await MixClient.create(options)` to make a MixClient')
    }
    this.#inner = inner
    this.#clusterId = clusterId
  }

  /**
   * Connects to a gateway from `options.bootstrap`, gets a circuit reservation and resolves
   * to a ready client. Without `options.mixnodes` it first looks the pool up through Waku
   * rendezvous at the gateway, and resolves once that gave at least 3 mix nodes.
   *
   * @throws {MixError} `NOT_INITIALISED` before `initAsync()`, `INVALID_OPTIONS`,
   *   `NOT_CONNECTED` if no gateway connected and granted a reservation in time, `NO_ROUTE`
   *   (without `mixnodes`) if the gateway does not serve rendezvous or fewer than 3 mix nodes
   *   were found within `connectTimeoutMs`.
   */
  static async create (options: MixClientOptions): Promise<MixClient> {
    const wasmOptions = normaliseClientOptions(options)
    const clusterId = options.clusterId ?? DEFAULT_CLUSTER_ID
    const { WasmMixClient } = bindings
    let inner: WasmMixClient
    try {
      inner = await WasmMixClient.create(wasmOptions)
    } catch (err) {
      throw toMixError(err)
    }
    const client = new MixClient(PASS, inner, clusterId)
    // Start pumping events on a later task, so listeners added right after `await create()`
    // also get the events queued during creation.
    setTimeout(() => { void client.#pump() }, 0)
    return client
  }

  /** This client's own libp2p peer id. */
  get peerId (): string {
    return this.#inner.peerId
  }

  /** The circuit address its SURB replies come back to (`…/p2p/<gateway>/p2p-circuit/p2p/<me>`). */
  get circuitAddress (): string {
    return this.#inner.circuitAddress
  }

  /** The wire format its packets are built in (`options.format`, default `'lip183'`). */
  get format (): MixFormat {
    return this.#inner.format
  }

  /** The Waku cluster id given at creation (default 2). */
  get clusterId (): number {
    return this.#clusterId
  }

  /** The pubsub topic lightpush uses when none is given: `/waku/2/rs/<clusterId>/0`. */
  get defaultPubsubTopic (): string {
    return `${STATIC_SHARDING_PREFIX}${this.#clusterId}/${DEFAULT_SHARD}`
  }

  /** True once {@link close} has been called. */
  get closed (): boolean {
    return this.#closing !== undefined
  }

  /**
   * The largest `body` {@link send} takes for `codec` with `surbs` SURBs (default 1).
   *
   * @throws {MixError} `INVALID_OPTIONS`
   */
  maxMessageLen (codec: string, surbs = 1): number {
    checkCodec(codec)
    checkCount('surbs', surbs, 0)
    return this.#call(() => this.#inner.maxMessageLen(codec, surbs))
  }

  /**
   * The largest WakuMessage `payload` {@link lightpush} takes for this content topic (without
   * `meta` or an RLN proof, which take room too).
   *
   * @throws {MixError} `INVALID_OPTIONS`
   */
  maxLightpushPayload (params: { contentTopic: string; pubsubTopic?: string; surbs?: number }): number {
    if (typeof params !== 'object' || params === null) invalid('maxLightpushPayload() takes { contentTopic, pubsubTopic?, surbs? }')
    const { contentTopic, pubsubTopic = this.defaultPubsubTopic, surbs = 1 } = params
    checkString('contentTopic', contentTopic)
    checkString('pubsubTopic', pubsubTopic)
    checkCount('surbs', surbs, 0)
    return this.#call(() => this.#inner.maxLightpushPayload(pubsubTopic, contentTopic, surbs))
  }

  /**
   * Sends `body` to a pool node (exit == destination) with origin protocol `codec` and resolves
   * to the reply bytes (a copy). For protocols that frame their messages (lightpush v3 uses
   * `uvarint(len) ‖ protobuf`), `body` and the reply include that framing.
   *
   * @throws {MixError} `INVALID_OPTIONS`, `PAYLOAD_TOO_LARGE` (before anything is sent; see
   *   `maxLen`), `NO_ROUTE`, `UNKNOWN_DESTINATION`, `SEND_FAILED`, `TIMEOUT`, `INVALID_REPLY`,
   *   `CLOSED`.
   */
  async send (codec: string, body: Uint8Array, options?: SendOptions): Promise<Uint8Array> {
    checkCodec(codec)
    checkBytes('body', body)
    const opts = normaliseSendOptions(options)
    return await this.#callAsync(() => this.#inner.send(codec, body, opts))
  }

  /**
   * Publishes `request.message` with Waku lightpush v3 at a service node reached through the
   * mixnet, and resolves to the service's answer. A non-200 `statusCode` is an answer, not an
   * exception: check it.
   *
   * @throws {MixError} as {@link send}, and `BAD_REPLY` if the reply is not a lightpush response.
   */
  async lightpush (request: LightPushRequest, options?: SendOptions): Promise<LightPushResponse> {
    if (typeof request !== 'object' || request === null) invalid('lightpush() takes { pubsubTopic?, message, serviceNode? }')
    const pubsubTopic = request.pubsubTopic ?? this.defaultPubsubTopic
    checkType('pubsubTopic', pubsubTopic)
    const message = normaliseWakuMessage(request.message)
    const opts = normaliseSendOptions(options, request.serviceNode)
    const res = await this.#callAsync(() => this.#inner.lightpush(pubsubTopic, message, opts))
    return copyResponse(res)
  }

  /**
   * As {@link lightpush}, for a WakuMessage that is already protobuf-encoded (e.g. by a
   * js-waku encoder's `toWire()`).
   */
  async lightpushEncoded (pubsubTopic: string, wakuMessage: Uint8Array, options?: SendOptions): Promise<LightPushResponse> {
    checkType('pubsubTopic', pubsubTopic)
    checkBytes('wakuMessage', wakuMessage)
    const opts = normaliseSendOptions(options)
    const res = await this.#callAsync(() => this.#inner.lightpushEncoded(pubsubTopic, wakuMessage, opts))
    return copyResponse(res)
  }

  /** Counters and recent timings (a snapshot). */
  stats (): MixStats {
    const s = this.#call(() => this.#inner.stats())
    return {
      sent: s.sent,
      replies: s.replies,
      timeouts: s.timeouts,
      poolSize: s.poolSize,
      buildMs: Array.from(s.buildMs),
      openMs: Array.from(s.openMs)
    }
  }

  /**
   * Closes the connections. Requests still in flight reject with `CLOSED`, and so does every
   * later call. Idempotent.
   */
  close (): Promise<void> {
    if (this.#closing === undefined) {
      this.#closing = this.#callAsync(() => this.#inner.close())
    }
    return this.#closing
  }

  /** `await using client = await MixClient.create(…)` closes it at the end of the scope. */
  async [asyncDispose] (): Promise<void> {
    await this.close()
  }

  async #pump (): Promise<void> {
    for (;;) {
      let ev: raw.WasmClientEvent | undefined
      try {
        ev = await this.#inner.nextEvent()
      } catch (err) {
        const e = toMixError(err)
        if (e.code !== 'CLOSED' && this.#closing === undefined) {
          console.warn('[@mix-rs/mix] event stream failed:', e)
        }
        break
      }
      if (ev === undefined || ev === null) break
      const { type, ...detail } = ev as { type: string } & Record<string, unknown>
      this.dispatchEvent(new CustomEvent(type, { detail }))
    }
    this.dispatchEvent(new CustomEvent('close', { detail: {} }))
  }

  #call<T>(f: () => T): T {
    try {
      return f()
    } catch (err) {
      throw toMixError(err)
    }
  }

  async #callAsync<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f()
    } catch (err) {
      throw toMixError(err)
    }
  }
}

// ---- validation and conversion -------------------------------------------------------------
//
// TypeScript checks types; the wasm module checks ranges and the lightpush rules (the service's
// own checks, mix-waku `check_request`), with the same `INVALID_OPTIONS` code. A check stays here
// only where the wasm module would answer with another code or could not read the value.

function checkType (what: string, v: unknown): asserts v is string {
  if (typeof v !== 'string') invalid(`${what} must be a string`)
}

function checkString (what: string, v: unknown): asserts v is string {
  if (typeof v !== 'string' || v === '') invalid(`${what} must be a non-empty string`)
}

function checkCodec (codec: unknown): asserts codec is string {
  checkString('codec', codec)
}

function checkBytes (what: string, v: unknown): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) invalid(`${what} must be a Uint8Array`)
}

function checkCount (what: string, v: unknown, min: number): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    invalid(`${what} must be an integer ≥ ${min}`)
  }
}

function checkStringArray (what: string, v: unknown): asserts v is string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) {
    invalid(`${what} must be an array of non-empty strings`)
  }
}

/** Converts a pool entry in either form to the camelCase form. */
export function normaliseMixNode (node: MixNodeInfo | PoolFileNode, index = 0): MixNodeInfo {
  if (typeof node !== 'object' || node === null) invalid(`mixnodes[${index}] must be an object`)
  const n = node as Partial<MixNodeInfo> & Partial<PoolFileNode>
  const peerId = n.peerId ?? n.peer_id
  const mixPublicKey = n.mixPublicKey ?? n.mix_public_key
  const multiaddrs = n.multiaddrs
  checkString(`mixnodes[${index}].peerId`, peerId)
  checkString(`mixnodes[${index}].mixPublicKey`, mixPublicKey)
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(mixPublicKey)) {
    invalid(`mixnodes[${index}].mixPublicKey must be 64 hex characters (32 bytes)`)
  }
  checkStringArray(`mixnodes[${index}].multiaddrs`, multiaddrs)
  return {
    peerId,
    multiaddrs: [...multiaddrs],
    mixPublicKey: mixPublicKey.replace(/^0x/, '').toLowerCase()
  }
}

/** Checks {@link MixClientOptions} and converts them to the wasm layer's form. */
export function normaliseClientOptions (options: MixClientOptions): raw.WasmClientOptions {
  if (typeof options !== 'object' || options === null) invalid('MixClient.create() takes an options object')
  checkStringArray('bootstrap', options.bootstrap)
  if (options.bootstrap.length === 0) invalid('bootstrap must name at least one gateway multiaddr')
  const out: raw.WasmClientOptions = { bootstrap: [...options.bootstrap] }
  if (options.mixnodes !== undefined) {
    if (!Array.isArray(options.mixnodes)) invalid('mixnodes must be an array (or absent, to discover the pool)')
    out.mixnodes = options.mixnodes.map((n, i) => normaliseMixNode(n, i))
  }
  if (options.clusterId !== undefined) {
    checkCount('clusterId', options.clusterId, 0)
    out.clusterId = options.clusterId
  }
  if (options.connectTimeoutMs !== undefined) {
    checkCount('connectTimeoutMs', options.connectTimeoutMs, 1)
    out.connectTimeoutMs = options.connectTimeoutMs
  }
  if (options.logLevel !== undefined) {
    if (typeof options.logLevel !== 'string' || !LOG_LEVELS.has(options.logLevel)) {
      invalid(`logLevel must be one of ${[...LOG_LEVELS].join(', ')}`)
    }
    out.logLevel = options.logLevel
  }
  if (options.format !== undefined) {
    checkFormat(options.format)
    out.format = options.format
  }
  if (options.senderHoldMs !== undefined) {
    checkCount('senderHoldMs', options.senderHoldMs, 0)
    out.senderHoldMs = options.senderHoldMs
  }
  return out
}

function checkFormat (format: unknown): asserts format is MixFormat {
  if (typeof format !== 'string' || !(MIX_FORMATS as readonly string[]).includes(format)) {
    invalid(`format must be one of ${MIX_FORMATS.join(', ')} (as the relays' --mix-format), not ${JSON.stringify(format)}`)
  }
}

/** Checks {@link SendOptions} and converts them to the wasm layer's form. */
export function normaliseSendOptions (options: SendOptions | undefined, serviceNode?: string): raw.WasmSendOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) invalid('options must be an object')
  const o = options ?? {}
  const out: raw.WasmSendOptions = {}
  if (o.surbs !== undefined) {
    checkCount('surbs', o.surbs, 0)
    out.surbs = o.surbs
  }
  if (o.timeoutMs !== undefined) {
    checkCount('timeoutMs', o.timeoutMs, 0)
    out.timeoutMs = o.timeoutMs
  }
  if (o.redundancy !== undefined) {
    checkCount('redundancy', o.redundancy, 0)
    out.redundancy = o.redundancy
  }
  if (serviceNode !== undefined) checkString('serviceNode', serviceNode)
  if (o.destination !== undefined) checkString('destination', o.destination)
  if (serviceNode !== undefined && o.destination !== undefined && serviceNode !== o.destination) {
    invalid('serviceNode and options.destination name different nodes')
  }
  const destination = o.destination ?? serviceNode
  if (destination !== undefined) out.destination = destination
  return out
}

/** Checks a {@link WakuMessage} and converts it to the wasm layer's form. */
export function normaliseWakuMessage (message: WakuMessage): raw.WasmWakuMessage {
  if (typeof message !== 'object' || message === null) invalid('message must be an object { payload, contentTopic, … }')
  checkBytes('message.payload', message.payload)
  checkType('message.contentTopic', message.contentTopic)
  const out: raw.WasmWakuMessage = { payload: message.payload, contentTopic: message.contentTopic }
  const ts = message.timestamp
  if (ts !== undefined) {
    if (ts instanceof Date) {
      const ms = ts.getTime()
      if (!Number.isFinite(ms)) invalid('message.timestamp is an invalid Date')
      out.timestamp = BigInt(ms) * 1_000_000n
    } else if (typeof ts === 'bigint') {
      out.timestamp = ts
    } else {
      invalid('message.timestamp must be a bigint (ns) or a Date')
    }
  }
  if (message.meta !== undefined) {
    checkBytes('message.meta', message.meta)
    out.meta = message.meta
  }
  if (message.ephemeral !== undefined) {
    if (typeof message.ephemeral !== 'boolean') invalid('message.ephemeral must be a boolean')
    out.ephemeral = message.ephemeral
  }
  if (message.version !== undefined) {
    checkCount('message.version', message.version, 0)
    out.version = message.version
  }
  if (message.rateLimitProof !== undefined) {
    checkBytes('message.rateLimitProof', message.rateLimitProof)
    out.rateLimitProof = message.rateLimitProof
  }
  return out
}

function copyResponse (res: raw.WasmLightPushResponse): LightPushResponse {
  const out: LightPushResponse = {
    requestId: res.requestId,
    statusCode: res.statusCode,
    servicePeerId: res.servicePeerId
  }
  if (res.statusDesc !== undefined && res.statusDesc !== null) out.statusDesc = res.statusDesc
  if (res.relayPeerCount !== undefined && res.relayPeerCount !== null) out.relayPeerCount = res.relayPeerCount
  if (res.trace !== undefined && res.trace !== null) {
    const t = res.trace
    out.trace = {
      hops: [...t.hops],
      replyHops: [...t.replyHops],
      buildMs: t.buildMs,
      mixnetMs: t.mixnetMs,
      openMs: t.openMs
    }
  }
  return out
}

/** A WebTransport multiaddr with the certificate hashes a browser needs to check the relay. */
function isWebTransport (addr: string): boolean {
  return /\/webtransport(\/|$)/.test(addr) && /\/certhash\//.test(addr)
}

/** A WebSocket multiaddr (`/ws` or `/wss`). */
function isWebSocket (addr: string): boolean {
  return /\/wss?(\/|$)/.test(addr)
}

/**
 * {@link MixClientOptions} from a pool file: every node's WebTransport addresses, then its
 * WebSocket ones, as bootstrap candidates (nodes in file order), every node as a mix node, and
 * the file's cluster id and wire format (`format`; `extra` overrides both).
 */
export function optionsFromPool (pool: PoolFile, extra: Partial<MixClientOptions> = {}): MixClientOptions {
  if (typeof pool !== 'object' || pool === null || !Array.isArray(pool.nodes)) {
    invalid('a pool file is { cluster_id, shards, nodes: [{ peer_id, multiaddrs, mix_public_key }] }')
  }
  const bootstrap = pool.nodes.flatMap((n) => {
    const addrs = Array.isArray(n.multiaddrs) ? n.multiaddrs : []
    return [...addrs.filter(isWebTransport), ...addrs.filter(isWebSocket)]
  })
  const out: MixClientOptions = { bootstrap, mixnodes: pool.nodes, ...extra }
  if (extra.clusterId === undefined && typeof pool.cluster_id === 'number') out.clusterId = pool.cluster_id
  if (extra.format === undefined && pool.format !== undefined) {
    checkFormat(pool.format)
    out.format = pool.format
  }
  return out
}
