/**
 * Listeners without options go straight to Node's EventTarget (src/p2p/patches/lean-listeners.ts): they get every
 * event, are counted by `listenerCount` (Node's own count, the same as `getEventListeners`), are removed (and only
 * once, also beside the package's entries of the same type), duplicates are ignored, nothing is kept on the emitter,
 * `once`/`signal` listeners still work through the package's own path, `handleEvent` objects are called, the patch is installed
 * once, and a libp2p stream between two nodes still delivers, drains and closes (sha256 of the whole transfer).
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { getEventListeners } from 'node:events'
import { describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'
import { countsFromHeads, leanListeners, nativeCount } from '../../src/p2p/patches/lean-listeners.ts'

interface Events {
  ping: CustomEvent<number>
  idle: Event
}

describe('leanListeners', () => {
  leanListeners()

  it('delivers to plain, once, signal and handleEvent listeners, and counts each', () => {
    const e = new TypedEventEmitter<Events>()
    const seen: string[] = []
    const plain = (evt: CustomEvent<number>): void => void seen.push(`plain ${evt.detail}`)
    e.addEventListener('ping', plain)
    e.addEventListener('ping', plain) // a duplicate is no second listener
    e.addEventListener('ping', () => seen.push('once'), { once: true })
    const ac = new AbortController()
    e.addEventListener('ping', () => seen.push('signal'), { signal: ac.signal })
    e.addEventListener('ping', { handleEvent: (evt: Event) => seen.push(`object ${(evt as CustomEvent).detail}`) })
    assert.equal(e.listenerCount('ping'), 4)
    e.safeDispatchEvent('ping', { detail: 1 })
    assert.equal(e.listenerCount('ping'), 3, 'the once listener is gone')
    ac.abort()
    assert.equal(e.listenerCount('ping'), 2, 'the signal listener is gone')
    e.safeDispatchEvent('ping', { detail: 2 })
    assert.deepEqual(seen, ['plain 1', 'once', 'signal', 'object 1', 'plain 2', 'object 2'])
  })

  it('removes a plain listener once, and a type without listeners counts 0', () => {
    const e = new TypedEventEmitter<Events>()
    let n = 0
    const listener = (): void => {
      n++
    }
    e.addEventListener('idle', listener)
    assert.equal(e.listenerCount('idle'), 1)
    e.removeEventListener('idle', listener, { capture: true }) // another capture flag: not this listener
    assert.equal(e.listenerCount('idle'), 1)
    e.removeEventListener('idle', listener)
    e.removeEventListener('idle', listener)
    assert.equal(e.listenerCount('idle'), 0)
    e.dispatchEvent(new Event('idle'))
    assert.equal(n, 0)
    assert.equal(e.listenerCount('ping'), 0)
  })

  it("keeps nothing per emitter beyond Node's own, and counts as getEventListeners does", () => {
    const e = new TypedEventEmitter<Events>()
    const keys = Reflect.ownKeys(e)
    const seen: string[] = []
    const plain = (): void => void seen.push('plain')
    const once = (): void => void seen.push('once')
    e.addEventListener('ping', plain)
    e.addEventListener('ping', once, { once: true })
    e.addEventListener('idle', plain)
    assert.deepEqual(Reflect.ownKeys(e), keys, 'no property added to the emitter')
    const counts = (): number[] => [
      e.listenerCount('ping'),
      nativeCount(e, 'ping'),
      getEventListeners(e, 'ping').length,
      e.listenerCount('idle'),
      getEventListeners(e, 'idle').length,
    ]
    assert.deepEqual(counts(), [2, 2, 2, 1, 1])
    assert.equal(countsFromHeads, true, 'this Node keeps its listener lists where the count is read from')
    // the package holds an entry for 'ping': removing the plain listener must still reach Node's list
    e.removeEventListener('ping', plain)
    assert.deepEqual(counts(), [1, 1, 1, 1, 1])
    e.safeDispatchEvent('ping', { detail: 1 })
    assert.deepEqual(seen, ['once'])
    assert.deepEqual(counts(), [0, 0, 0, 1, 1])
    e.removeEventListener('idle', plain)
    assert.deepEqual(counts(), [0, 0, 0, 0, 0])
  })

  it('patches the prototype once', () => {
    const before = TypedEventEmitter.prototype.addEventListener
    leanListeners()
    assert.equal(TypedEventEmitter.prototype.addEventListener, before)
  })

  it('leaves libp2p streams working: many messages, back-pressure and close', async () => {
    const a = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const b = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    try {
      const got = new Promise<string>((resolve, reject) => {
        void b.handle('/test/sink/1', (stream: Stream) => {
          const h = createHash('sha256')
          stream.addEventListener('message', (evt) => h.update(evt.data.subarray()))
          stream.addEventListener('remoteCloseWrite', () => {
            resolve(h.digest('hex'))
            void stream.close()
          })
          stream.addEventListener('close', (evt) => {
            if (evt.error !== undefined) reject(evt.error)
          })
        })
      })
      const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, '/test/sink/1')
      const closed = new Promise((resolve) => stream.addEventListener('close', resolve))
      const sent = createHash('sha256')
      let drains = 0
      for (let i = 0; i < 2_000; i++) {
        const chunk = randomBytes(1 + (i % 3000))
        sent.update(chunk)
        if (!stream.send(chunk)) {
          drains++
          await new Promise((resolve) => stream.addEventListener('drain', resolve, { once: true }))
        }
      }
      await stream.close()
      assert.equal(await got, sent.digest('hex'))
      await closed
      assert.equal(stream.status, 'closed')
      assert.ok(drains > 0, 'the sender met back-pressure and was woken by drain')
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
