/**
 * Yamux frames find their stream by id (src/p2p/patches/stream-index.ts, UPSTREAM.md): on real nodes and a real TCP
 * connection, the stock muxer scans its streams for every frame and for every stream opened and closed, and Warren's
 * looks none up by scanning; its own versions of the package's methods take the package's steps (fakes); and under
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

async function connected(
  opts: Partial<NodeOptions>,
): Promise<{ conn: Connection; far: () => Connection; stop(): Promise<void> }> {
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
  return {
    conn,
    far: () => a.getConnections().find((c) => c.remotePeer.equals(b.peerId))!,
    stop: async () => void (await Promise.all([a.stop(), b.stop()])),
  }
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

/** Counts the calls of the predicates of `streams.find` and `streams.findIndex` on `muxer` (each a stream looked at). */
function countScans(muxer: Muxer): { looked: number } {
  const counter = { looked: 0 }
  for (const name of ['find', 'findIndex'] as const) {
    const scan = Array.prototype[name] as (
      this: unknown[],
      pred: (s: unknown, i: number, a: unknown[]) => boolean,
    ) => unknown
    Object.defineProperty(muxer.streams, name, {
      configurable: true,
      writable: true,
      value(this: unknown[], pred: (s: unknown, i: number, a: unknown[]) => boolean) {
        return scan.call(this, (s: unknown, i: number, a: unknown[]) => {
          counter.looked++
          return pred(s, i, a)
        })
      },
    })
  }
  return counter
}

describe('Yamux streams indexed by id', () => {
  for (const stock of [true, false]) {
    it(`${stock ? 'stock: every frame and stream scans' : 'Warren: no frame or stream scans'} the open streams`, async () => {
      const { conn, far, stop } = await connected({ stock })
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
        // 10 streams opened, echoed and closed on both ends, with the 40 held open
        const farScans = countScans(muxerOf(far()))
        scans.looked = 0
        for (let i = 0; i < 10; i++) {
          const r = await echo(conn, randomBytes(1000 + i))
          assert.equal(r.got, r.sent)
        }
        for (let i = 0; i < 50 && muxer.streams.length > 40; i++) await new Promise((r) => setTimeout(r, 20))
        assert.equal(muxer.streams.length, 40)
        const looked = scans.looked + farScans.looked
        if (stock) assert.ok(looked >= 10 * 4 * 40, `stock looked at ${looked} streams`)
        else assert.equal(looked, 0)
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

describe('a closing connection', () => {
  it('takes every held stream out of the list and the index, each with an error', async () => {
    const { conn, far, stop } = await connected({})
    try {
      const held: Stream[] = []
      for (let i = 0; i < 200; i++) held.push(await conn.newStream(ECHO, { maxOutboundStreams: 1024 }))
      const ends = held.map(
        (s) => new Promise<unknown>((resolve) => s.addEventListener('close', (e) => resolve(e.error), { once: true })),
      )
      const muxers = [muxerOf(conn), muxerOf(far())]
      for (let i = 0; i < 50 && muxers[1]!.streams.length < 200; i++) await new Promise((r) => setTimeout(r, 20))
      assert.deepEqual(
        muxers.map((m) => m.streams.length),
        [200, 200],
      )
      await conn.close()
      const errors = await Promise.all(ends)
      assert.ok(
        errors.every((e) => e !== undefined),
        'every stream cut by the closing connection ends with an error',
      )
      for (let i = 0; i < 50 && muxers[1]!.streams.length > 0; i++) await new Promise((r) => setTimeout(r, 20))
      for (const m of muxers) {
        assert.equal(m.streams.length, 0)
        assert.deepEqual(indexedStreamIds(m), [])
      }
    } finally {
      await stop()
    }
  })
})

describe('the stream index on its own', () => {
  interface Fake {
    streamId: number
    direction: string
    got: string[]
    listeners: ((evt: { error?: unknown; local?: boolean }) => void)[]
    handleWindowUpdate(): void
    handleData(): void
    addEventListener(type: 'close', l: (evt: { error?: unknown; local?: boolean }) => void): void
  }
  const fake = (streamId: number, direction = 'outbound'): Fake => {
    const f: Fake = {
      streamId,
      direction,
      got: [],
      listeners: [],
      handleWindowUpdate: () => void f.got.push('window'),
      handleData: () => void f.got.push('data'),
      addEventListener: (_type, l) => void f.listeners.push(l),
    }
    return f
  }
  const close = (s: Fake, evt: { error?: unknown; local?: boolean } = {}): void => {
    for (const l of s.listeners) l(evt)
  }

  /** A stand-in for the package's muxer: its own methods record that they ran and what `streams` held then. */
  function fakeMuxer(client = false) {
    const ran: string[] = []
    const counted: string[] = []
    const sent: { type: number; flag: number; streamID: number; length: number }[] = []
    const m = {
      streams: [] as Fake[],
      client,
      localGoAway: undefined as unknown,
      numInboundStreams: 0,
      maxInboundStreams: 3,
      metrics: { increment: (c: Record<string, boolean>) => void counted.push(...Object.keys(c)) },
      handleStreamMessage(_frame: unknown): void {
        ran.push('package handleStreamMessage')
      },
      incomingStream(id: number): void {
        ran.push(`package incomingStream ${id}`)
        if (this.client !== (id % 2 === 0)) throw new Error('Both endpoints are clients')
      },
      _newStream(id: number, state: number, direction: string): Fake {
        ran.push(`package _newStream ${id} ${state} ${direction} saw ${this.streams.length}`)
        return fake(id, direction)
      },
      cleanUpStream(_s: Fake): void {
        ran.push('package cleanUpStream')
      },
      onRemoteStream(s: Fake): void {
        this.streams.push(s)
        this.cleanUpStream(s)
      },
      sendFrame(h: { type: number; flag: number; streamID: number; length: number }): void {
        sent.push(h)
      },
      log: Object.assign((msg: string) => void ran.push(`log ${msg}`), { trace: () => {} }),
    }
    return { m, ran, counted, sent }
  }

  it('routes frames by id, makes and removes streams without scanning, and counts them as the package does', () => {
    const { m, ran, counted } = fakeMuxer()
    assert.equal(indexStreams(m), true)
    assert.equal(indexStreams(m), true, 'idempotent')
    m.handleStreamMessage({ header: { type: 0, flag: 1, streamID: 1, length: 3 } })
    m.handleStreamMessage({ header: { type: 1, flag: 1, streamID: 3, length: 0 } })
    assert.deepEqual(ran, ['package _newStream 1 2 inbound saw 0', 'package _newStream 3 2 inbound saw 0'])
    const [a, c] = m.streams
    assert.deepEqual([a!.got, c!.got, m.numInboundStreams], [['data'], ['window'], 2])
    assert.deepEqual(indexedStreamIds(m), [1, 3])
    // a known id goes to the package's methods, which answer from the list
    m.incomingStream(1)
    m._newStream(3, 0, 'outbound')
    assert.deepEqual(ran.slice(2), ['package incomingStream 1', 'package _newStream 3 0 outbound saw 2'])
    close(a!)
    close(c!, { error: new Error('x'), local: true })
    assert.deepEqual([m.streams, indexedStreamIds(m)], [[], []])
    assert.deepEqual(counted, ['inbound_stream', 'inbound_stream', 'inbound_stream_end', 'inbound_stream_reset'])
    // a frame for a stream that is gone reaches no stream; an unknown type on a known one is the package's error
    m.handleStreamMessage({ header: { type: 0, flag: 0, streamID: 1, length: 3 } })
    assert.deepEqual(a!.got, ['data'])
    m.handleStreamMessage({ header: { type: 0, flag: 1, streamID: 5, length: 3 } })
    assert.throws(() => m.handleStreamMessage({ header: { type: 2, flag: 0, streamID: 5, length: 0 } }), {
      message: 'unreachable',
    })
  })

  it('resets a stream past maxInboundStreams or while going away, and leaves a wrong parity to the package', () => {
    const { m, ran, sent } = fakeMuxer()
    indexStreams(m)
    for (const id of [1, 3, 5, 7]) m.incomingStream(id)
    assert.equal(m.streams.length, 3)
    assert.deepEqual(sent, [{ type: 1, flag: 8, streamID: 7, length: 0 }])
    assert.ok(ran.includes('log maxIncomingStreams exceeded, forcing stream reset'))
    m.localGoAway = 0
    m.numInboundStreams = 0
    m.incomingStream(9)
    assert.deepEqual(sent[1], { type: 1, flag: 8, streamID: 9, length: 0 })
    assert.throws(() => m.incomingStream(2), { message: 'Both endpoints are clients' })
  })

  it('takes the package path for a list the package replaced', () => {
    const { m, ran } = fakeMuxer()
    indexStreams(m)
    m.streams = []
    m.handleStreamMessage({ header: { type: 0, flag: 0, streamID: 1, length: 0 } })
    m.incomingStream(1)
    m.cleanUpStream(fake(1))
    assert.deepEqual(ran, ['package handleStreamMessage', 'package incomingStream 1', 'package cleanUpStream'])
  })

  it('leaves a muxer without the hooks it relies on, or with streams already, alone', () => {
    const busy = fakeMuxer().m
    busy.streams.push(fake(1))
    const { m: noNew } = fakeMuxer()
    const partial: Record<string, unknown> = { ...noNew, _newStream: undefined }
    for (const m of [undefined, {}, { streams: [], handleStreamMessage: () => {} }, busy, partial]) {
      assert.equal(indexStreams(m), false)
      assert.equal(indexedStreamIds(m), undefined)
    }
  })
})
