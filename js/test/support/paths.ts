// Paths of the package, the example dapp and the test output.
import { fileURLToPath } from 'node:url'
import path from 'node:path'

export const JS_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const REPO_ROOT = path.resolve(JS_ROOT, '..')
export const DIST = path.join(JS_ROOT, 'dist')
export const WASM_DIR = path.join(JS_ROOT, 'wasm')
export const WASM_CORE_DIR = path.join(JS_ROOT, 'wasm-core')
export const RESULTS = path.join(JS_ROOT, 'test-results')
export const DAPP_ROOT = path.join(REPO_ROOT, 'examples', 'dapp')
