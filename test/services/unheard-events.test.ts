/**
 * Events with no listener are skipped (src/p2p/patches/unheard-events.ts): listeners still get every event with its
 * detail, `once` listeners still run once, a type without listeners builds no event and returns what a dispatch
 * would have, the patch is installed once, and a Warren node's streams still deliver, drain and close.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import type { Stream } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'
import { skipUnheardEvents } from '../../src/p2p/patches/unheard-events.ts'

interface Events {
  ping: CustomEvent<number>
  idle: Event
}

describe('skipUnheardEvents', () => {
  skipUnheardEvents()

  it('delivers events to listeners with their detail, and once listeners once', () => {
    const e = new TypedEventEmitter<Events>()
    const seen: number[] = []
    e.addEventListener('ping', (evt) => seen.push(evt.detail))
    let once = 0
    e.addEventListener('ping', () => once++, { once: true })
    assert.equal(e.safeDispatchEvent('ping', { detail: 7 }), true)
    assert.equal(e.safeDispatchEvent('ping', { detail: 8 }), true)
    assert.deepEqual(seen, [7, 8])
    assert.equal(once, 1)
  })

  it('builds and dispatches nothing for a type without listeners, and returns true as a dispatch would', () => {
    const e = new TypedEventEmitter<Events>()
    let dispatched = 0
    const dispatch = e.dispatchEvent.bind(e)
    e.dispatchEvent = (evt: Event) => {
      dispatched++
      return dispatch(evt)
    }
    assert.equal(e.safeDispatchEvent('idle'), true)
    assert.equal(dispatched, 0)
    const listener = (): void => {}
    e.addEventListener('idle', listener)
    assert.equal(e.safeDispatchEvent('idle'), true)
    assert.equal(dispatched, 1)
    e.removeEventListener('idle', listener)
    assert.equal(e.safeDispatchEvent('idle'), true)
    assert.equal(dispatched, 1, 'a removed listener no longer counts')
  })

  it('still lets a listener cancel a cancelable event', () => {
    const e = new TypedEventEmitter<Events>()
    e.addEventListener('ping', (evt) => evt.preventDefault())
    assert.equal(e.safeDispatchEvent('ping', { detail: 1, cancelable: true }), false)
  })

  it('patches the prototype once', () => {
    const before = TypedEventEmitter.prototype.safeDispatchEvent
    skipUnheardEvents()
    skipUnheardEvents()
    assert.equal(TypedEventEmitter.prototype.safeDispatchEvent, before)
  })

  it("leaves a Warren node's streams working: many messages, back-pressure and close", async () => {
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
      const closed = new Promise((resolve) => stream.addEventListener('close', resolve, { once: true }))
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
      await closed // the far side's close reached this side
      assert.equal(stream.status, 'closed')
      assert.ok(drains > 0, 'the sender met back-pressure and was woken by drain')
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
