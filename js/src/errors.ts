/**
 * Errors thrown by this package.
 *
 * Every failure is a {@link MixError}: a real `Error` subclass (so `instanceof`, `.name` and
 * stack traces work) with a stable machine-readable {@link MixErrorCode}. Messages are for
 * humans and may change; codes do not.
 *
 * This module has no dependency on the wasm module, so it can be imported (and errors can be
 * checked with `instanceof`) before `initAsync()`.
 *
 * @module
 */

import { WASM_ERROR_CODES, type WasmErrorCode } from './generated.js'

/**
 * The stable error codes. One of the strings in {@link MIX_ERROR_CODES}: the wasm module's codes
 * ({@link WASM_ERROR_CODES}, generated from the Rust definitions, where each is described),
 * and `NOT_INITIALISED`, which only this package throws: the wasm module is not loaded (call and
 * await `initAsync()` first, or it failed to load).
 */
export type MixErrorCode = WasmErrorCode | 'NOT_INITIALISED'

/** Every {@link MixErrorCode}, in a stable order. */
export const MIX_ERROR_CODES: readonly MixErrorCode[] = Object.freeze([...WASM_ERROR_CODES, 'NOT_INITIALISED'])

const KNOWN_CODES: ReadonlySet<string> = new Set(MIX_ERROR_CODES)

/** Options of the {@link MixError} constructor. */
export interface MixErrorOptions {
  /** For `PAYLOAD_TOO_LARGE`: the largest size that fits. */
  maxLen?: number
  /** The underlying error, if any. */
  cause?: unknown
}

/** The error this package throws. Check `code`, not `message`. */
export class MixError extends Error {
  /** A stable machine-readable code. */
  readonly code: MixErrorCode
  /** For `PAYLOAD_TOO_LARGE`: the largest body / payload (in bytes) that fits. */
  readonly maxLen?: number

  constructor (code: MixErrorCode, message: string, options: MixErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options.maxLen !== undefined) this.maxLen = options.maxLen
  }

  static {
    // On the prototype, so it is not an own enumerable property but `err.name` and the
    // default `toString()`/stack header say "MixError".
    Object.defineProperty(this.prototype, 'name', {
      value: 'MixError',
      writable: true,
      enumerable: false,
      configurable: true
    })
  }
}

/** True if `err` is a {@link MixError} (optionally with the given code). */
export function isMixError (err: unknown, code?: MixErrorCode): err is MixError {
  return err instanceof MixError && (code === undefined || err.code === code)
}

/** The shape of the wasm layer's error class (`WasmMixError`); read by duck typing. */
interface WasmErrorLike {
  readonly code: unknown
  readonly message: unknown
  readonly maxLen?: unknown
  free?: () => void
}

function isWasmErrorLike (err: unknown): err is WasmErrorLike {
  if (typeof err !== 'object' || err === null) return false
  try {
    return typeof (err as WasmErrorLike).code === 'string'
  } catch {
    return false
  }
}

function describe (err: unknown): string {
  if (err instanceof Error) return err.message
  try {
    return String(err)
  } catch {
    return 'unknown error'
  }
}

/**
 * Converts anything thrown by the wasm layer (normally a `WasmMixError`) into a
 * {@link MixError}. A `MixError` is returned unchanged. A `WasmMixError` is read and then
 * freed. An unknown wasm code, a JS exception or a wasm trap (a Rust panic surfaces as a
 * `WebAssembly.RuntimeError`) becomes `INTERNAL`, with the original as `cause`.
 */
export function toMixError (err: unknown): MixError {
  if (err instanceof MixError) return err
  if (isWasmErrorLike(err)) {
    let code: unknown
    let message: unknown
    let maxLen: unknown
    try {
      code = err.code
      message = err.message
      maxLen = err.maxLen
    } catch (readErr) {
      return new MixError('INTERNAL', `could not read an error from the wasm module: ${describe(readErr)}`, { cause: readErr })
    } finally {
      try {
        if (!(err instanceof Error)) err.free?.()
      } catch {
        // already freed, or not a wasm object: nothing to release
      }
    }
    const text = typeof message === 'string' && message !== '' ? message : String(code)
    if (typeof code === 'string' && KNOWN_CODES.has(code) && code !== 'NOT_INITIALISED') {
      const opts: MixErrorOptions = err instanceof Error ? { cause: err } : {}
      if (code === 'PAYLOAD_TOO_LARGE' && typeof maxLen === 'number' && Number.isFinite(maxLen)) {
        opts.maxLen = maxLen
      }
      return new MixError(code as MixErrorCode, text, opts)
    }
    return new MixError('INTERNAL', `unexpected error code ${String(code)} from the wasm module: ${text}`,
      err instanceof Error ? { cause: err } : {})
  }
  if (typeof WebAssembly !== 'undefined' && err instanceof WebAssembly.RuntimeError) {
    return new MixError('INTERNAL', `the wasm module trapped (a Rust panic): ${err.message}`, { cause: err })
  }
  return new MixError('INTERNAL', describe(err), { cause: err })
}

/** Throws `INVALID_OPTIONS` with `message`. */
export function invalid (message: string): never {
  throw new MixError('INVALID_OPTIONS', message)
}
