/**
 * Loading the wasm module, and the guard that keeps it from being used before it is loaded.
 *
 * The wasm-bindgen output (`../wasm/mix_wasm.js`, `--target web`) is imported statically but
 * only *instantiated* by {@link initAsync}. Everything else in this package reaches the
 * bindings through {@link bindings}, a Proxy that throws a `NOT_INITIALISED` {@link MixError}
 * until then, instead of the opaque `TypeError` wasm-bindgen glue throws on an uninitialised
 * module.
 *
 * @module
 */

import init, * as raw from '../wasm/mix_wasm.js'
import { MixError } from './errors.js'

/**
 * Where to load the wasm binary from, as wasm-bindgen's `init` accepts it: a URL (string or
 * `URL`), a `Request`/`Response`, the bytes, or a compiled `WebAssembly.Module` (or a promise of
 * any of these).
 */
export type WasmSource =
  | string
  | URL
  | Request
  | Response
  | BufferSource
  | WebAssembly.Module
  | Promise<string | URL | Request | Response | BufferSource | WebAssembly.Module>

let loading: Promise<void> | undefined
let ready = false

/**
 * Loads and instantiates the wasm module. Call it (and await it) once before using
 * {@link MixClient}. Further calls return the same promise, so it is safe to call it from
 * several places; if loading fails the promise rejects with a `NOT_INITIALISED` `MixError` and
 * the next call tries again.
 *
 * @param source Where to load `mix_wasm_bg.wasm` from. Default: next to the package's
 *   `wasm/mix_wasm.js` (`new URL('mix_wasm_bg.wasm', import.meta.url)`), which bundlers such as
 *   Vite and webpack 5 rewrite to the emitted asset. Pass a URL when you serve the file yourself
 *   or bundle with a tool that does not handle that pattern (esbuild).
 */
export function initAsync (source?: WasmSource): Promise<void> {
  if (loading !== undefined) return loading
  const attempt = (async () => {
    try {
      if (source === undefined) {
        await init()
      } else {
        await init({ module_or_path: source })
      }
      ready = true
    } catch (err) {
      loading = undefined
      const why = err instanceof Error ? err.message : String(err)
      throw new MixError('NOT_INITIALISED', `failed to load the mix wasm module: ${why}`, { cause: err })
    }
  })()
  loading = attempt
  return attempt
}

/** True once {@link initAsync} has resolved. */
export function isInitialised (): boolean {
  return ready
}

/** The wasm-bindgen exports, guarded: any property access before `initAsync()` throws. */
export const bindings: typeof raw = new Proxy(raw, {
  get (target, prop, receiver) {
    if (!ready) {
      throw new MixError(
        'NOT_INITIALISED',
        'the mix wasm module is not initialised: call and await initAsync() (from @mix-rs/mix) before using MixClient'
      )
    }
    return Reflect.get(target, prop, receiver) as unknown
  }
})
