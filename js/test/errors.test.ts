// Unit tests (Node, no browser) of the built error mapping, the js-waku error mapping, and the
// checks of the wire-format options (format, senderHoldMs) and of pool files naming a format.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LightPushError } from '@waku/interfaces'

import { MIX_ERROR_CODES, MixError, isMixError, toMixError } from '../dist/errors.js'
import type { MixErrorCode } from '../dist/errors.js'
import { WakuLightPushError, lightPushErrorFor } from '../dist/waku.js'
import { MIX_FORMATS, normaliseClientOptions, optionsFromPool } from '../dist/client.js'
import type { MixClientOptions, PoolFile } from '../dist/client.js'

/** A stand-in for wasm-bindgen's `WasmMixError` (getters, and a `free()` to count). */
class FakeWasmError {
  freed = 0
  constructor (readonly code: string, readonly message: string, readonly maxLen?: number) {}
  free (): void { this.freed++ }
}

const WASM_CODES = MIX_ERROR_CODES.filter((c) => c !== 'NOT_INITIALISED')

test('MIX_ERROR_CODES lists every code once', () => {
  assert.equal(new Set(MIX_ERROR_CODES).size, MIX_ERROR_CODES.length)
  assert.deepEqual([...MIX_ERROR_CODES].sort(), [
    'BAD_REPLY', 'CLOSED', 'INTERNAL', 'INVALID_OPTIONS', 'INVALID_REPLY', 'NOT_CONNECTED',
    'NOT_INITIALISED', 'NO_ROUTE', 'PAYLOAD_TOO_LARGE', 'SEND_FAILED', 'TIMEOUT', 'UNKNOWN_DESTINATION'
  ])
  assert.ok(Object.isFrozen(MIX_ERROR_CODES))
})

test('MixError is an Error subclass with a stable name and code', () => {
  const e = new MixError('TIMEOUT', 'no reply', { cause: 'x' })
  assert.ok(e instanceof Error)
  assert.ok(e instanceof MixError)
  assert.equal(e.name, 'MixError')
  assert.equal(e.code, 'TIMEOUT')
  assert.equal(e.message, 'no reply')
  assert.equal(e.cause, 'x')
  assert.equal(e.maxLen, undefined)
  assert.match(String(e), /^MixError: no reply/)
  assert.match(e.stack ?? '', /MixError: no reply/)
  assert.ok(!Object.keys(e).includes('name'))
  assert.ok(isMixError(e))
  assert.ok(isMixError(e, 'TIMEOUT'))
  assert.ok(!isMixError(e, 'CLOSED'))
  assert.ok(!isMixError(new Error('x')))
})

for (const code of WASM_CODES) {
  test(`toMixError maps the wasm code ${code}`, () => {
    const maxLen = code === 'PAYLOAD_TOO_LARGE' ? 3112 : undefined
    const w = new FakeWasmError(code, `the ${code} text`, maxLen)
    const e = toMixError(w)
    assert.ok(e instanceof MixError)
    assert.equal(e.code, code)
    assert.equal(e.message, `the ${code} text`)
    assert.equal(e.maxLen, maxLen)
    assert.equal(w.freed, 1, 'the wasm error object is freed once read')
  })
}

test('toMixError keeps maxLen only for PAYLOAD_TOO_LARGE', () => {
  assert.equal(toMixError(new FakeWasmError('TIMEOUT', 't', 12)).maxLen, undefined)
  assert.equal(toMixError(new FakeWasmError('PAYLOAD_TOO_LARGE', 't')).maxLen, undefined)
  assert.equal(toMixError(new FakeWasmError('PAYLOAD_TOO_LARGE', 't', Number.NaN)).maxLen, undefined)
  assert.equal(toMixError(new FakeWasmError('PAYLOAD_TOO_LARGE', 't', 0)).maxLen, 0)
})

test('toMixError: an unknown or missing wasm code is INTERNAL, naming it', () => {
  const e = toMixError(new FakeWasmError('SOMETHING_NEW', 'new failure'))
  assert.equal(e.code, 'INTERNAL')
  assert.match(e.message, /SOMETHING_NEW/)
  assert.match(e.message, /new failure/)
  // NOT_INITIALISED belongs to the TS layer; the wasm layer never reports it.
  assert.equal(toMixError(new FakeWasmError('NOT_INITIALISED', 'x')).code, 'INTERNAL')
  // An empty message falls back to the code.
  assert.equal(toMixError(new FakeWasmError('TIMEOUT', '')).message, 'TIMEOUT')
})

test('toMixError: a JS Error with a known code keeps the code and the cause', () => {
  const js = Object.assign(new Error('closed by peer'), { code: 'CLOSED' })
  const e = toMixError(js)
  assert.equal(e.code, 'CLOSED')
  assert.equal(e.cause, js)
})

test('toMixError: other thrown values are INTERNAL with the original as cause', () => {
  const plain = new TypeError('expected a Uint8Array')
  const e1 = toMixError(plain)
  assert.equal(e1.code, 'INTERNAL')
  assert.equal(e1.message, 'expected a Uint8Array')
  assert.equal(e1.cause, plain)

  const trap = new WebAssembly.RuntimeError('unreachable')
  const e2 = toMixError(trap)
  assert.equal(e2.code, 'INTERNAL')
  assert.match(e2.message, /trapped.*unreachable/)
  assert.equal(e2.cause, trap)

  assert.equal(toMixError('a string').message, 'a string')
  assert.equal(toMixError(undefined).code, 'INTERNAL')
  assert.equal(toMixError(null).code, 'INTERNAL')
  assert.equal(toMixError({ code: 42 }).code, 'INTERNAL')
})

test('toMixError passes a MixError through unchanged', () => {
  const e = new MixError('NO_ROUTE', 'x')
  assert.equal(toMixError(e), e)
})

test('toMixError survives a wasm error whose getters throw (already freed)', () => {
  const broken = {
    get code (): string { return 'TIMEOUT' },
    get message (): string { throw new Error('null pointer passed to rust') },
    free (): void { throw new Error('already freed') }
  }
  // Reading the message fails: that is reported as INTERNAL, not thrown.
  const e = toMixError(broken)
  assert.ok(e instanceof MixError)
  assert.equal(e.code, 'INTERNAL')
  assert.match(e.message, /null pointer/)
})

test('the adapter\'s LightPushError values are @waku/interfaces\' own', () => {
  for (const [key, value] of Object.entries(WakuLightPushError)) {
    assert.equal(value, (LightPushError as unknown as Record<string, string>)[key], `LightPushError.${key}`)
  }
})

const EXPECTED_WAKU: Record<MixErrorCode, LightPushError> = {
  INVALID_OPTIONS: LightPushError.GENERIC_FAIL,
  PAYLOAD_TOO_LARGE: LightPushError.SIZE_TOO_BIG,
  NO_ROUTE: LightPushError.NO_PEER_AVAILABLE,
  UNKNOWN_DESTINATION: LightPushError.NO_PEER_AVAILABLE,
  TIMEOUT: LightPushError.NO_RESPONSE,
  NOT_CONNECTED: LightPushError.NO_PEER_AVAILABLE,
  SEND_FAILED: LightPushError.NO_STREAM_AVAILABLE,
  INVALID_REPLY: LightPushError.DECODE_FAILED,
  BAD_REPLY: LightPushError.DECODE_FAILED,
  CLOSED: LightPushError.STREAM_ABORTED,
  INTERNAL: LightPushError.GENERIC_FAIL,
  NOT_INITIALISED: LightPushError.GENERIC_FAIL
}

for (const code of MIX_ERROR_CODES) {
  test(`lightPushErrorFor(${code}) is LightPushError.${Object.entries(LightPushError).find(([, v]) => v === EXPECTED_WAKU[code])?.[0] ?? '?'}`, () => {
    assert.equal(lightPushErrorFor(code), EXPECTED_WAKU[code])
  })
}

test('format and senderHoldMs pass through to the wasm options, and bad values are INVALID_OPTIONS', () => {
  const bootstrap = ['/ip4/127.0.0.1/tcp/4001/ws/p2p/16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF']
  assert.deepEqual(MIX_FORMATS, ['lip183', 'v039'])
  assert.deepEqual(normaliseClientOptions({ bootstrap }), { bootstrap })
  assert.deepEqual(normaliseClientOptions({ bootstrap, format: 'v039', senderHoldMs: 0 }),
    { bootstrap, format: 'v039', senderHoldMs: 0 })
  // Ranges are the wasm module's to check (senderHoldMs above 65535 is INVALID_OPTIONS there, at
  // create); here only types.
  assert.deepEqual(normaliseClientOptions({ bootstrap, senderHoldMs: 70000 }), { bootstrap, senderHoldMs: 70000 })
  for (const bad of [{ format: 'v040' }, { format: 'LIP-183' }, { senderHoldMs: -1 }, { senderHoldMs: 1.5 }]) {
    assert.throws(() => normaliseClientOptions({ bootstrap, ...bad } as unknown as MixClientOptions),
      (e: unknown) => isMixError(e, 'INVALID_OPTIONS'), JSON.stringify(bad))
  }
})

test('optionsFromPool takes the pool file\'s format unless told otherwise', () => {
  const node = { peer_id: '16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF', multiaddrs: ['/ip4/127.0.0.1/tcp/4001/ws/p2p/16Uiu2HAmLtKaFaSWDohToWhWUZFLtqzYZGPFuXwKrojFVF6az5UF'], mix_public_key: '22'.repeat(32) }
  const old: PoolFile = { format: 'v039', cluster_id: 2, nodes: [node] }
  assert.equal(optionsFromPool(old).format, 'v039')
  assert.equal(optionsFromPool(old, { format: 'lip183' }).format, 'lip183')
  assert.equal(optionsFromPool({ cluster_id: 2, nodes: [node] }).format, undefined)
  assert.throws(() => optionsFromPool({ ...old, format: 'v1' as 'v039' }), (e: unknown) => isMixError(e, 'INVALID_OPTIONS'))
})
