// A tiny static file server on 127.0.0.1 (random port) for the test pages.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.ts': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8'
}

export interface Mount {
  /** URL prefix, starting and ending with '/'. */
  prefix: string
  /** Directory it maps to. */
  dir: string
}

export interface StaticServer {
  url: string
  /** Count of requests per path (e.g. to check a wasm file was fetched). */
  hits: Map<string, number>
  close: () => Promise<void>
}

export interface ServeOptions {
  mounts: Mount[]
  /** Fixed responses by exact path. */
  files?: Record<string, { body: string | Uint8Array; type: string }>
}

export async function serve (options: ServeOptions): Promise<StaticServer> {
  const hits = new Map<string, number>()
  const mounts = [...options.mounts].sort((a, b) => b.prefix.length - a.prefix.length)
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const pathname = decodeURIComponent(url.pathname)
      hits.set(pathname, (hits.get(pathname) ?? 0) + 1)
      const fixed = options.files?.[pathname]
      const headers = { 'cache-control': 'no-store' }
      if (fixed !== undefined) {
        res.writeHead(200, { ...headers, 'content-type': fixed.type })
        res.end(fixed.body)
        return
      }
      const mount = mounts.find((m) => pathname.startsWith(m.prefix) || pathname + '/' === m.prefix)
      if (mount === undefined) {
        res.writeHead(404, headers).end('not found')
        return
      }
      let rel = pathname.slice(mount.prefix.length)
      if (rel === '' || rel.endsWith('/')) rel += 'index.html'
      const file = path.resolve(mount.dir, rel)
      if (file !== mount.dir && !file.startsWith(mount.dir + path.sep)) {
        res.writeHead(403, headers).end('forbidden')
        return
      }
      try {
        const st = await stat(file)
        if (!st.isFile()) throw new Error('not a file')
        const body = await readFile(file)
        const type = MIME[path.extname(file)] ?? 'application/octet-stream'
        res.writeHead(200, { ...headers, 'content-type': type, 'content-length': body.length })
        res.end(body)
      } catch {
        res.writeHead(404, headers).end('not found')
      }
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
