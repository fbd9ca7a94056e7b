import { defineConfig } from 'vite'

export default defineConfig({
  // One copy of the libp2p peer-id code, whichever package imports it.
  resolve: { dedupe: ['@libp2p/peer-id', '@libp2p/interface', '@libp2p/crypto'] },
  // The wasm-bindgen loader finds its .wasm with `new URL('mix_wasm_bg.wasm', import.meta.url)`:
  // keep the package out of dependency pre-bundling (dev server) so that URL stays valid.
  // Its own imports are then found late; name them so the dev server does not reload once.
  optimizeDeps: { exclude: ['@mix-rs/mix'], include: ['@libp2p/peer-id'] },
  // `file:../../js` is a symlink outside this folder: let the dev server read it.
  server: { fs: { allow: ['.', '../../js'] } },
  build: { target: 'es2022' }
})
