// A module Web Worker that uses the package: init, create, one lightpush, report back.
import { initAsync, MixClient, MixError } from '@mix-rs/mix'
import type { MixClientOptions } from '@mix-rs/mix'

interface Job { options: MixClientOptions; contentTopic: string }

const post = (data: unknown): void => { (self as unknown as { postMessage: (d: unknown) => void }).postMessage(data) }

self.addEventListener('message', (ev: MessageEvent<Job>) => {
  void (async () => {
    const { options, contentTopic } = ev.data
    try {
      const beforeInit = await MixClient.create(options).then(() => 'created', (e: unknown) => (e instanceof MixError ? e.code : String(e)))
      await initAsync()
      const client = await MixClient.create(options)
      let reservation = false
      client.addEventListener('reservation', () => { reservation = true })
      const t0 = performance.now()
      const res = await client.lightpush({ message: { payload: new TextEncoder().encode(`hello from a worker ${Date.now()}`), contentTopic } })
      const ms = performance.now() - t0
      await new Promise((resolve) => setTimeout(resolve, 50))
      await client.close()
      post({
        ok: true,
        hasWindow: typeof (globalThis as { window?: unknown }).window !== 'undefined',
        hasDocument: typeof (globalThis as { document?: unknown }).document !== 'undefined',
        beforeInit,
        peerId: client.peerId,
        reservation,
        response: res,
        ms
      })
    } catch (e) {
      post({ ok: false, error: e instanceof MixError ? { code: e.code, message: e.message } : String(e) })
    }
  })()
})
