// Builds the test pages (test/pages/*.ts) with esbuild into test-results/pages/.
//
// Pages import the package by name. Two ways of resolving it:
// - "native" (default): `@mix-rs/mix` stays an import of the built file as the browser loads it
//   unbundled from the static server (`/pkg/dist/index.js`), so the test exercises js/dist and
//   js/wasm exactly as published, including the default wasm URL next to mix_wasm.js;
// - "bundled": `@mix-rs/mix` and `@mix-rs/mix/waku` are bundled from js/dist with their
//   dependencies (for the js-waku page, which needs @waku/sdk bundled too).
import { build } from 'esbuild'
import type { Plugin } from 'esbuild'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { DIST, JS_ROOT, RESULTS } from './paths.js'

export const PAGES_OUT = path.join(RESULTS, 'pages')

function packagePlugin (mode: 'native' | 'bundled'): Plugin {
  return {
    name: 'mix-package',
    setup (b) {
      b.onResolve({ filter: /^@mix-rs\/mix(\/waku)?$/ }, (args) => {
        const file = args.path.endsWith('/waku') ? 'waku.js' : 'index.js'
        if (mode === 'native') return { path: `/pkg/dist/${file}`, external: true }
        return { path: path.join(DIST, file) }
      })
    }
  }
}

export async function buildPage (entry: string, mode: 'native' | 'bundled' = 'native'): Promise<string> {
  const outfile = path.join(PAGES_OUT, `${entry}.js`)
  await build({
    entryPoints: [path.join(JS_ROOT, 'test', 'pages', `${entry}.ts`)],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: 'inline',
    logLevel: 'warning',
    plugins: [packagePlugin(mode)],
    define: { 'process.env.NODE_ENV': '"production"' }
  })
  return outfile
}

/** An HTML page that loads `/pages/<entry>.js` as a module. */
export async function writeHtml (name: string, entry: string): Promise<void> {
  await mkdir(PAGES_OUT, { recursive: true })
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>${name}</title></head>
<body><script type="module" src="/pages/${entry}.js"></script></body></html>
`
  await writeFile(path.join(PAGES_OUT, `${name}.html`), html)
}
