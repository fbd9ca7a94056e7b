// The testnet pool the browser tests send through: `MIX_POOL_FILE`, as written by
// `mix-relay testnet --pool-file`. Only loopback addresses are accepted.
import { readFileSync } from 'node:fs'

export interface PoolNode {
  peer_id: string
  multiaddrs: string[]
  mix_public_key: string
  mixnode?: string
}

export interface Pool {
  /** The wire format (`mix-relay testnet --mix-format`); absent: lip183. */
  format?: 'lip183' | 'v039'
  cluster_id: number
  shards: number[]
  nodes: PoolNode[]
}

function isLoopback (addr: string): boolean {
  return /^\/ip4\/127\.\d+\.\d+\.\d+\//.test(addr) || addr.startsWith('/ip6/::1/') || addr.startsWith('/dns4/localhost/')
}

/** Reads and checks the pool file named by `variable` (default `MIX_POOL_FILE`); throws a clear error if it is not set. */
export function loadPool (variable = 'MIX_POOL_FILE'): Pool {
  const file = process.env[variable]
  if (file === undefined || file === '') {
    throw new Error(`${variable} is not set: start a testnet (mix-relay testnet --pool-file FILE) and point ${variable} at FILE`)
  }
  const pool = JSON.parse(readFileSync(file, 'utf8')) as Pool
  if (!Array.isArray(pool.nodes) || pool.nodes.length < 4) {
    throw new Error(`${file}: a pool needs at least 4 nodes, has ${pool.nodes?.length ?? 0}`)
  }
  for (const n of pool.nodes) {
    for (const a of n.multiaddrs) {
      if (!isLoopback(a)) throw new Error(`${file}: refusing non-loopback address ${a}`)
    }
  }
  return pool
}

/** The WebSocket multiaddr of a node (the browser's bootstrap). */
export function wsAddr (node: PoolNode): string {
  const a = node.multiaddrs.find((m) => m.includes('/ws/'))
  if (a === undefined) throw new Error(`no /ws/ address for ${node.peer_id}`)
  return a
}

/** The WebTransport multiaddr of a node (with its certhashes), if it has one. */
export function wtAddr (node: PoolNode): string {
  const a = node.multiaddrs.find((m) => m.includes('/webtransport/certhash/'))
  if (a === undefined) throw new Error(`no WebTransport address for ${node.peer_id}`)
  return a
}

/**
 * Client options that reach relays over one transport only: node[0]'s address of that kind as
 * the gateway, every node as a mix node without its addresses of the other kind (so first-hop
 * dials use the same transport).
 */
export function singleTransportOptions (pool: Pool, kind: 'webtransport' | 'websocket', extra: Record<string, unknown> = {}): Record<string, unknown> {
  const keep = kind === 'webtransport' ? (a: string) => !/\/wss?\//.test(a) : (a: string) => !a.includes('/webtransport')
  return {
    bootstrap: [kind === 'webtransport' ? wtAddr(pool.nodes[0]!) : wsAddr(pool.nodes[0]!)],
    mixnodes: pool.nodes.map((n) => ({ ...n, multiaddrs: n.multiaddrs.filter(keep) })),
    clusterId: pool.cluster_id,
    logLevel: process.env.MIX_LOG_LEVEL ?? 'warn',
    ...extra
  }
}

/** The pubsub topic the testnet serves. */
export function pubsubTopic (pool: Pool): string {
  return `/waku/2/rs/${pool.cluster_id}/${pool.shards[0] ?? 0}`
}

/** Client options for the page: node[0]'s ws address as the gateway, every node as a mix node. */
export function clientOptions (pool: Pool, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    bootstrap: [wsAddr(pool.nodes[0]!)],
    mixnodes: pool.nodes,
    clusterId: pool.cluster_id,
    logLevel: process.env.MIX_LOG_LEVEL ?? 'warn',
    ...extra
  }
}
