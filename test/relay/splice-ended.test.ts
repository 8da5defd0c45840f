/**
 * The relay's splice (src/relay/server/splice.ts) given a stream that ended while the circuit was being opened: the
 * node that asked for the circuit reset its stream (or closed it) while the relay dialled the other node. That
 * stream's 'close' came before the splice listened, so the splice passes its end on at once: the other node's stream
 * is reset (or gets a FIN), and the splice reports its end. Real nodes and real TCP connections: `x` → `r` (the
 * relay's side of it is `a`) and `r` → `y` (`b`).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Connection, Stream } from '@libp2p/interface'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { spliceStreams } from '../../src/relay/server/splice.ts'
import { eventually } from '../support/eventually.ts'

const PROTO = '/warren-test/splice-ended/1.0.0'

describe("the relay's splice given a stream that has already ended", () => {
  let x: WarrenLibp2p
  let r: WarrenLibp2p
  let y: WarrenLibp2p
  let xr: Connection
  let ry: Connection
  /** The relay's side of each stream x opened, in order. */
  const atRelay: Stream[] = []
  /** How each stream the relay opened to y ended at y (in an object: a bare promise would be awaited by `eventually`). */
  const atY: { closed: Promise<Event & { error?: Error }> }[] = []

  before(async () => {
    r = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    y = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    x = await createNode({ privateKey: await generateNodeKey(), listen: [] })
    await r.handle(PROTO, (s: Stream) => void atRelay.push(s))
    await y.handle(PROTO, (s: Stream) => {
      atY.push({ closed: new Promise((resolve) => s.addEventListener('close', resolve)) })
      s.addEventListener('message', () => {}) // reads what comes, so that the FIN after it is seen
      s.addEventListener('end', () => void s.close().catch(() => {}))
    })
    xr = await x.dial(r.getMultiaddrs()[0]!)
    ry = await r.dial(y.getMultiaddrs()[0]!)
  })
  after(async () => {
    await Promise.all([x.stop(), r.stop(), y.stop()])
  })

  /** x's stream to r, and r's side of it once it arrived. */
  async function fromX(): Promise<{ mine: Stream; theirs: Stream }> {
    const n = atRelay.length
    const mine = await xr.newStream(PROTO)
    mine.send(Buffer.from('x'))
    const theirs = await eventually(() => atRelay[n], { timeoutMs: 5_000, message: "x's stream at the relay" })
    return { mine, theirs }
  }

  it("a source stream reset before the splice: the other node's stream is reset, the splice ends with the error", async () => {
    const { mine, theirs: a } = await fromX()
    mine.abort(new Error('x gave up'))
    await eventually(() => a.status === 'reset', { timeoutMs: 5_000, message: 'the reset at the relay' })
    const n = atY.length
    const b = await ry.newStream(PROTO)
    b.send(Buffer.from('r'))
    const yEnd = await eventually(() => atY[n], { timeoutMs: 5_000, message: "the relay's stream at y" })
    let ended: Error | undefined | 'not yet' = 'not yet'
    spliceStreams(a, b, { onEnd: (err) => (ended = err) })
    assert.equal((await yEnd.closed).error?.name, 'StreamResetError', 'y sees a reset')
    assert.equal((ended as Error | undefined | 'not yet') === 'not yet', false, 'the splice ended')
    assert.equal((ended as unknown as Error).name, 'StreamResetError')
  })

  it("a source stream closed both ways before the splice: the other node's stream gets a FIN and closes cleanly", async () => {
    const { mine, theirs: a } = await fromX()
    await mine.close()
    await eventually(() => a.readStatus === 'closed' || a.remoteWriteStatus === 'closed', {
      timeoutMs: 5_000,
      message: "x's FIN at the relay",
    })
    await a.close()
    await eventually(() => a.status === 'closed', { timeoutMs: 5_000, message: 'closed both ways at the relay' })
    const n = atY.length
    const b = await ry.newStream(PROTO)
    b.send(Buffer.from('r'))
    const yEnd = await eventually(() => atY[n], { timeoutMs: 5_000, message: "the relay's stream at y" })
    const ended = new Promise<Error | undefined>((resolve) => spliceStreams(a, b, { onEnd: resolve }))
    assert.equal((await yEnd.closed).error, undefined, 'y sees a clean close')
    assert.equal(await ended, undefined)
  })
})
