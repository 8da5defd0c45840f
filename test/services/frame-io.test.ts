/**
 * readFrame over real libp2p streams: a header the stream already holds is taken off it at once, without a listener
 * (the host's usual case: the request comes with the stream's first frame), and one that arrives later is awaited;
 * either way the bytes after it reach the next reader unchanged (SHA-256 of 256 KiB).
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { Libp2p, Stream } from '@libp2p/interface'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'
import { readFrame } from '../../src/services/frame-io.ts'
import { encodeRequest } from '../../src/services/header.ts'

const PROTOCOL = '/test/frame-io/1'
const SIZE = 256 * 1024

/** SHA-256 of the next `n` bytes of `stream`. */
function sha256Of(stream: Stream, n: number): Promise<string> {
  return new Promise((resolve) => {
    const h = createHash('sha256')
    let got = 0
    const onMessage = (evt: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
      const c = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      h.update(c)
      got += c.byteLength
      if (got < n) return
      stream.removeEventListener('message', onMessage)
      resolve(h.digest('hex'))
    }
    stream.addEventListener('message', onMessage)
  })
}

interface Served {
  frame: Uint8Array
  /** 'message' listeners right after readFrame was called. */
  listening: number
  rest: string
}

describe('readFrame', () => {
  let a: Libp2p
  let b: Libp2p
  /** How the handler of the next stream waits before it reads: until the header is held, or not at all. */
  let wait: 'held' | 'none' = 'held'
  let served: Promise<Served>
  let serve: (s: Served) => void = () => {}

  before(async () => {
    a = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    b = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    await b.handle(PROTOCOL, async (stream: Stream) => {
      if (wait === 'held') {
        for (let i = 0; i < 200 && stream.readBufferLength < 64; i++) await new Promise((r) => setTimeout(r, 5))
        assert.ok(stream.readBufferLength >= 64, 'the header is held by the stream')
      }
      const reading = readFrame(stream, 5_000)
      const listening = stream.listenerCount('message')
      const frame = await reading
      serve({ frame, listening, rest: await sha256Of(stream, SIZE) })
      await stream.close()
    })
  })
  after(async () => {
    await Promise.all([a.stop(), b.stop()])
  })

  for (const when of ['held', 'none'] as const) {
    it(`${when === 'held' ? 'takes a header the stream holds, listening for nothing' : 'waits for a header still on its way'}; the bytes after it pass unchanged`, async () => {
      wait = when
      served = new Promise((r) => {
        serve = r
      })
      const request = encodeRequest({ service: 'web', port: 8080 })
      const payload = randomBytes(SIZE)
      const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL)
      if (when === 'none') await new Promise((r) => setTimeout(r, 50))
      stream.send(Buffer.concat([request, payload.subarray(0, 1000)]))
      stream.send(payload.subarray(1000))
      const got = await served
      await stream.close()
      assert.deepEqual(Buffer.from(got.frame), Buffer.from(request.subarray(1)))
      assert.equal(got.rest, createHash('sha256').update(payload).digest('hex'))
      if (when === 'held') assert.equal(got.listening, 0, 'no listener: the frame was taken at once')
      else assert.equal(got.listening, 1, 'a listener waits for the frame')
    })
  }
})
