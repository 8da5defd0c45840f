/**
 * Yamux frames find their stream by id (src/p2p/patches/stream-index.ts, UPSTREAM.md): on real nodes and a real TCP
 * connection, the stock muxer scans its streams for every frame and Warren's looks none up by scanning; and under
 * churn (hundreds of streams opened, echoed, closed and reset at once, in random sizes) every byte comes back
 * (SHA-256 per stream), the index always lists exactly the open streams, and a frame for a stream that is gone is
 * dropped as the package drops it.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import type { Connection, Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type NodeOptions, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { indexedStreamIds, indexStreams } from '../../src/p2p/patches/stream-index.ts'

const ECHO = '/warren-test/index-echo/1.0.0'

interface Muxer {
  streams: { streamId: number }[]
  handleFrame(frame: unknown): void
}

async function connected(opts: Partial<NodeOptions>): Promise<{ conn: Connection; stop(): Promise<void> }> {
  const a: WarrenLibp2p = await createNode({
    privateKey: await generateNodeKey(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    ...opts,
  })
  const b: WarrenLibp2p = await createNode({ privateKey: await generateNodeKey(), listen: [], ...opts })
  await a.handle(
    ECHO,
    async (stream: Stream) => {
      try {
        for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain()
        await stream.close()
      } catch {
        // a stream the test resets
      }
    },
    { maxInboundStreams: 1024 },
  )
  const conn = await b.dial(a.getMultiaddrs()[0]!)
  return { conn, stop: async () => void (await Promise.all([a.stop(), b.stop()])) }
}

const muxerOf = (conn: Connection): Muxer => (conn as unknown as { muxer: Muxer }).muxer

/** Sends `data` on a new stream and reads it back; the SHA-256 of both, after a clean close on both sides. */
async function echo(conn: Connection, data: Uint8Array): Promise<{ sent: string; got: string }> {
  const stream = await conn.newStream(ECHO, { maxOutboundStreams: 1024 })
  const got = new Uint8ArrayList()
  const reading = (async () => {
    for await (const chunk of stream) got.append(chunk)
  })()
  for (let off = 0; off < data.length; off += 16 * 1024) {
    if (!stream.send(data.subarray(off, off + 16 * 1024))) await stream.onDrain()
  }
  await stream.close()
  await reading
  const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
  return { sent: sha(data), got: sha(got.subarray()) }
}

/** Counts the calls of the predicate of `streams.find` on `muxer` (each a stream looked at). */
function countScans(muxer: Muxer): { looked: number } {
  const counter = { looked: 0 }
  const find = Array.prototype.find
  Object.defineProperty(muxer.streams, 'find', {
    configurable: true,
    writable: true,
    value(this: unknown[], pred: (s: unknown, i: number, a: unknown[]) => boolean) {
      return find.call(this, (s: unknown, i: number, a: unknown[]) => {
        counter.looked++
        return pred(s, i, a)
      })
    },
  })
  return counter
}

describe('Yamux streams indexed by id', () => {
  for (const stock of [true, false]) {
    it(`${stock ? 'stock: every frame scans' : 'Warren: no frame scans'} the open streams`, async () => {
      const { conn, stop } = await connected({ stock })
      try {
        // 40 streams held open, then 20 echoed exchanges on one more
        const held: Stream[] = []
        for (let i = 0; i < 40; i++) held.push(await conn.newStream(ECHO, { maxOutboundStreams: 1024 }))
        const stream = await conn.newStream(ECHO, { maxOutboundStreams: 1024 })
        const it = stream[Symbol.asyncIterator]()
        const muxer = muxerOf(conn)
        assert.equal(indexedStreamIds(muxer) === undefined, stock)
        const scans = countScans(muxer)
        for (let r = 0; r < 20; r++) {
          const chunk = randomBytes(100)
          stream.send(chunk)
          const back = new Uint8ArrayList()
          while (back.byteLength < 100) {
            const next = await it.next()
            assert.equal(next.done, false)
            back.append(next.value!)
          }
          assert.ok(Buffer.from(back.subarray()).equals(chunk), `round ${r}: the echo differs`)
        }
        if (stock) assert.ok(scans.looked >= 20 * 40, `stock looked at ${scans.looked} streams`)
        else assert.equal(scans.looked, 0)
        await stream.close()
        assert.equal((await it.next()).done, true)
        for (const s of held) await s.close()
      } finally {
        await stop()
      }
    })
  }

  it('every byte comes back under churn, and the index lists exactly the open streams', async () => {
    const { conn, stop } = await connected({})
    try {
      const muxer = muxerOf(conn)
      const sizes = Array.from({ length: 300 }, (_, i) => (i * 7919) % 70_000)
      const resets: Promise<void>[] = []
      for (let i = 0; i < 30; i++) {
        resets.push(
          (async () => {
            const s = await conn.newStream(ECHO, { maxOutboundStreams: 1024 })
            s.send(randomBytes(1000))
            s.abort(new Error('reset by the test'))
          })(),
        )
      }
      const results = await Promise.all(sizes.map((n) => echo(conn, randomBytes(n))))
      await Promise.all(resets)
      for (const r of results) assert.equal(r.got, r.sent)
      const open = (): number[] => muxer.streams.map((s) => s.streamId).sort((x, y) => x - y)
      for (let i = 0; i < 50 && open().length > 0; i++) await new Promise((r) => setTimeout(r, 20))
      assert.deepEqual(
        indexedStreamIds(muxer)!.sort((x, y) => x - y),
        open(),
      )
      // a window update for a stream that is gone is dropped, as the package drops it
      muxer.handleFrame({ header: { type: 1, flag: 0, streamID: 999_999, length: 1 } })
      const again = await echo(conn, randomBytes(5000))
      assert.equal(again.got, again.sent)
    } finally {
      await stop()
    }
  })
})

describe('the stream index on its own', () => {
  interface Fake {
    streamId: number
    got: string[]
    handleWindowUpdate(): void
    handleData(): void
  }
  const fake = (streamId: number): Fake => {
    const f: Fake = {
      streamId,
      got: [],
      handleWindowUpdate: () => void f.got.push('window'),
      handleData: () => void f.got.push('data'),
    }
    return f
  }

  it('answers as the scan would: the first of two streams with one id, then the second once the first is gone', () => {
    const opened: number[] = []
    const muxer = {
      streams: [] as Fake[],
      handleStreamMessage: (_frame: unknown): void => assert.fail('the package method ran'),
      incomingStream: (id: number) => void opened.push(id),
      log: { trace: () => {} },
    }
    assert.equal(indexStreams(muxer), true)
    assert.equal(indexStreams(muxer), true, 'idempotent')
    const [a, b, c, d] = [fake(1), fake(1), fake(3), fake(5)]
    muxer.streams.push(a, b, c)
    assert.deepEqual(indexedStreamIds(muxer), [1, 3])
    muxer.handleStreamMessage({ header: { type: 0, flag: 1, streamID: 1, length: 3 } })
    muxer.handleStreamMessage({ header: { type: 1, flag: 0, streamID: 3, length: 0 } })
    assert.deepEqual([opened, a.got, b.got, c.got], [[1], ['data'], [], ['window']])
    assert.deepEqual(muxer.streams.splice(0, 1, d), [a])
    muxer.handleStreamMessage({ header: { type: 0, flag: 0, streamID: 1, length: 3 } })
    assert.deepEqual([a.got, b.got], [['data'], ['data']])
    assert.deepEqual(indexedStreamIds(muxer)!.sort(), [1, 3, 5])
    muxer.streams.splice(0, 3)
    assert.deepEqual(indexedStreamIds(muxer), [])
    // a frame for a stream that is gone reaches no stream; an unknown type on a known one is the package's error
    muxer.handleStreamMessage({ header: { type: 0, flag: 0, streamID: 1, length: 3 } })
    muxer.streams.push(c)
    assert.throws(() => muxer.handleStreamMessage({ header: { type: 2, flag: 0, streamID: 3, length: 0 } }), {
      message: 'unreachable',
    })
    assert.deepEqual([a.got, b.got, c.got], [['data'], ['data'], ['window']])
  })

  it('leaves a muxer without the hooks it relies on alone', () => {
    for (const m of [
      undefined,
      {},
      { streams: [], handleStreamMessage: () => {} },
      { streams: {}, incomingStream() {} },
    ]) {
      assert.equal(indexStreams(m), false)
      assert.equal(indexedStreamIds(m), undefined)
    }
  })
})
