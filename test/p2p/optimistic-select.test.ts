/**
 * Optimistic protocol selection (src/p2p/patches/optimistic-select.ts, UPSTREAM.md row 15) and the peer store that
 * skips rewriting a record for a protocol it already lists (src/p2p/patches/known-protocols.ts, row 16), on real
 * libp2p nodes over TCP: stock nodes show the upstream behaviour (the guard), Warren's nodes the workaround.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import type { Connection, ConnectionGater, NewStreamOptions, Stream } from '@libp2p/interface'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { OPTIMISTIC_SELECT } from '../../src/p2p/patches/optimistic-select.ts'
import { patchesMissed } from '../../src/p2p/patches/status.ts'
import { readAll } from '../../src/p2p/read-all.ts'
import { echoed, echoStream } from '../support/stream-echo.ts'

const ECHO = '/test/echo/1.0.0'
const MISSING = '/test/missing/1.0.0'
const optimistic = { negotiateFully: false, [OPTIMISTIC_SELECT]: true } as NewStreamOptions

async function node(stock: boolean, connectionGater?: ConnectionGater): Promise<WarrenLibp2p> {
  const n = await createNode({
    privateKey: await generateNodeKey(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    stock,
    ...(connectionGater === undefined ? {} : { connectionGater }),
  })
  await n.handle(ECHO, echoStream)
  return n
}

/**
 * A node whose new inbound connections wait in libp2p's connection gater (after their muxer started, before the
 * node takes up their streams) until `release()`: the streams a dialer opens meanwhile are queued with their bytes
 * and their FIN, as on a loaded machine.
 */
async function heldNode(stock: boolean): Promise<{ node: WarrenLibp2p; release: () => void }> {
  let release = (): void => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const n = await node(stock, {
    denyInboundUpgradedConnection: async () => {
      await released
      return false
    },
  })
  return { node: n, release }
}

/** A Yamux ping on the connection: its answer comes after the far side has taken every frame sent before it. */
async function roundTrip(conn: Connection): Promise<void> {
  await (conn as unknown as { muxer: { ping(): Promise<number> } }).muxer.ping()
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** The error a stream closed with (undefined for a clean close). */
function closed(stream: Stream): Promise<Error | undefined> {
  return new Promise((resolve) => {
    if (stream.status === 'aborted' || stream.status === 'reset' || stream.status === 'closed') resolve(undefined)
    stream.addEventListener('close', (evt) => resolve((evt as Event & { error?: Error }).error), { once: true })
  })
}

describe('optimistic protocol selection', () => {
  let warren: WarrenLibp2p
  let warren2: WarrenLibp2p
  let stock: WarrenLibp2p
  before(async () => {
    warren = await node(false)
    warren2 = await node(false)
    stock = await node(true)
  })
  after(async () => {
    await Promise.all([warren?.stop(), warren2?.stop(), stock?.stop()])
  })

  it('upstream: newStream with negotiateFully: false still waits for the answer (an unsupported protocol rejects)', async () => {
    const conn = await stock.dial(warren.getMultiaddrs()[0]!)
    await assert.rejects(conn.newStream(MISSING, { negotiateFully: false }), { name: 'UnsupportedProtocolError' })
  })

  it('Warren: the stream opens at once, and an unsupported protocol aborts it with UnsupportedProtocolError', async () => {
    const conn = await warren.dial(stock.getMultiaddrs()[0]!)
    const stream = await conn.newStream(MISSING, optimistic)
    assert.equal(stream.protocol, MISSING)
    const error = await closed(stream)
    assert.equal(error?.name, 'UnsupportedProtocolError')
    assert.equal(error?.message, `the far side does not support ${MISSING}`)
  })

  it('an answered stream keeps fast properties (its methods are put back, not deleted: no dictionary mode)', async () => {
    // V8's own check; the flag only allows the %-syntax in functions compiled after it
    setFlagsFromString('--allow-natives-syntax')
    const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean
    const conn = await warren.dial(warren2.getMultiaddrs()[0]!)
    const stream = await conn.newStream(ECHO, optimistic)
    assert.equal(hasFastProperties(stream), true, 'before the answer')
    const reading = readAll(stream, AbortSignal.timeout(10_000), 1024)
    stream.send(new Uint8Array([1, 2, 3]))
    await stream.close()
    assert.deepEqual([...(await reading)], [1, 2, 3])
    assert.equal(hasFastProperties(stream), true, 'after the answer, with onData and close put back')
  })

  for (const [label, far] of [
    ['a stock node', () => stock],
    ['a Warren node', () => warren2],
  ] as const) {
    it(`carries 4 MiB sent before any answer to ${label} and back, whole (sha256) and in order`, async () => {
      const conn = await warren.dial(far().getMultiaddrs()[0]!)
      const stream = await conn.newStream(ECHO, optimistic)
      const data = randomBytes(4 * 1024 * 1024)
      const back = await echoed(stream, data)
      assert.equal(back.byteLength, data.byteLength)
      assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'))
    })
  }

  it('upstream: a stock listener resets a stream whose bytes and FIN all arrived before it took the stream up', async () => {
    const far = await heldNode(true)
    try {
      const conn = await warren.dial(far.node.getMultiaddrs()[0]!)
      const stream = await conn.newStream(ECHO, optimistic)
      const reading = readAll(stream, AbortSignal.timeout(30_000), 1024 * 1024)
      stream.send(randomBytes(16 * 1024))
      // the FIN at once, with the bytes (the stream class's own close, without the wait for the answer)
      const closing = (Object.getPrototypeOf(stream) as Stream).close.call(stream)
      await roundTrip(conn)
      far.release()
      await assert.rejects(reading, { name: 'StreamResetError' })
      await closing.catch(() => {})
    } finally {
      far.release()
      await far.node.stop()
    }
  })

  it('Warren: a Warren listener serves a stream whose protocol, bytes and FIN all arrived before it took the stream up', async () => {
    const far = await heldNode(false)
    try {
      const conn = await warren.dial(far.node.getMultiaddrs()[0]!)
      const streams = await Promise.all(Array.from({ length: 4 }, () => conn.newStream(ECHO, optimistic)))
      const sent = streams.map((_, i) => Buffer.concat([Buffer.from(`#${i}:`), randomBytes(16 * 1024)]))
      const reading = streams.map((stream) => readAll(stream, AbortSignal.timeout(30_000), 1024 * 1024))
      const closing = streams.map((stream, i) => {
        stream.send(sent[i]!)
        // the FIN at once, with the bytes, as a dialer that selects lazily sends it
        return (Object.getPrototypeOf(stream) as Stream).close.call(stream)
      })
      await roundTrip(conn)
      far.release()
      const back = await Promise.all(reading)
      await Promise.all(closing)
      for (const [i] of streams.entries()) assert.equal(sha256(back[i]!), sha256(sent[i]!), `stream ${i}`)
    } finally {
      far.release()
      await far.node.stop()
    }
  })

  for (const stockFar of [true, false]) {
    it(`Warren: bytes and a close sent at once on a new connection reach ${stockFar ? 'a stock' : 'a Warren'} listener that takes the stream up late, and come back whole`, async () => {
      const far = await heldNode(stockFar)
      try {
        const conn = await warren.dial(far.node.getMultiaddrs()[0]!)
        const streams = await Promise.all(Array.from({ length: 8 }, () => conn.newStream(ECHO, optimistic)))
        const sent = streams.map((_, i) => Buffer.concat([Buffer.from(`#${i}:`), randomBytes(16 * 1024)]))
        const reading = streams.map((stream) => readAll(stream, AbortSignal.timeout(30_000), 1024 * 1024))
        const closing = streams.map((stream, i) => {
          stream.send(sent[i]!)
          return stream.close()
        })
        await roundTrip(conn) // the far side holds every byte sent so far, and would hold a FIN sent with them
        far.release()
        const back = await Promise.all(reading)
        await Promise.all(closing)
        for (const [i, stream] of streams.entries()) {
          assert.equal(sha256(back[i]!), sha256(sent[i]!), `stream ${i}`)
          assert.equal(stream.status, 'closed', `stream ${i}`)
        }
      } finally {
        far.release()
        await far.node.stop()
      }
    })
  }

  it('Warren: a close while the answer is awaited ends when the stream is refused, with the refusal', async () => {
    const conn = await warren.dial(stock.getMultiaddrs()[0]!)
    const stream = await conn.newStream(MISSING, optimistic)
    const error = closed(stream)
    stream.send(randomBytes(100))
    await stream.close()
    assert.equal(stream.status, 'aborted')
    assert.equal((await error)?.name, 'UnsupportedProtocolError')
  })

  it('installed without a miss on Warren nodes', () => {
    assert.equal(patchesMissed().has('optimisticSelect'), false)
    assert.equal(patchesMissed().has('knownProtocols'), false)
  })
})

/** Counts the writes of peer records to a node's datastore while `fn` runs. */
async function peerWrites(n: WarrenLibp2p, fn: () => Promise<void>): Promise<number> {
  const ds = (n as unknown as { components: { datastore: { put: (...a: unknown[]) => Promise<unknown> } } }).components
    .datastore
  const put = ds.put
  let writes = 0
  ds.put = (...args: unknown[]) => {
    if (String(args[0]).startsWith('/peers/')) writes++
    return put.apply(ds, args)
  }
  try {
    await fn()
  } finally {
    ds.put = put
  }
  return writes
}

describe('peer records and new streams', () => {
  let a: WarrenLibp2p
  let b: WarrenLibp2p
  let stockA: WarrenLibp2p
  before(async () => {
    a = await node(false)
    b = await node(false)
    stockA = await node(true)
  })
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), stockA?.stop()])
  })

  const twentyStreams = async (from: WarrenLibp2p, to: WarrenLibp2p): Promise<void> => {
    const conn = await from.dial(to.getMultiaddrs()[0]!)
    for (let i = 0; i < 20; i++) {
      const s = await conn.newStream(ECHO)
      s.send(new Uint8Array([i]))
      await s.close()
      await readAll(s, AbortSignal.timeout(10_000), 16)
    }
  }

  it('upstream: every new stream rewrites the peer record', async () => {
    await twentyStreams(stockA, b) // first contact: identify and the first streams settle the record
    const writes = await peerWrites(stockA, () => twentyStreams(stockA, b))
    assert.ok(writes >= 20, `stock wrote the record ${writes} times for 20 streams`)
  })

  it('Warren: streams of a protocol the record lists leave it alone', async () => {
    await twentyStreams(a, b)
    const writes = await peerWrites(a, () => twentyStreams(a, b))
    assert.ok(writes <= 1, `Warren wrote the record ${writes} times for 20 streams`)
  })

  it('Warren: a protocol dropped from the record by another write is merged in again by the next stream', async () => {
    await twentyStreams(a, b)
    await a.peerStore.patch(b.peerId, { protocols: [] })
    assert.deepEqual((await a.peerStore.get(b.peerId)).protocols, [])
    const conn = await a.dial(b.getMultiaddrs()[0]!)
    const s = await conn.newStream(ECHO)
    await s.close()
    assert.ok((await a.peerStore.get(b.peerId)).protocols.includes(ECHO))
  })
})
