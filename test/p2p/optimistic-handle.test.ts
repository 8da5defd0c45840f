/**
 * The listening side of multistream-select answered from a new stream's first bytes
 * (src/p2p/patches/optimistic-handle.ts, UPSTREAM.md row 31), on real libp2p nodes over TCP: a stock listener shows
 * the upstream behaviour (handle() answers each line with a send of its own: the guard), Warren's listener answers
 * both lines with one send before the handler runs, and leaves every other case to handle().
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import type { Connection, NewStreamOptions, Stream } from '@libp2p/interface'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { optimisticallyAnswered } from '../../src/p2p/patches/optimistic-handle.ts'
import { OPTIMISTIC_SELECT } from '../../src/p2p/patches/optimistic-select.ts'
import { patchesMissed } from '../../src/p2p/patches/status.ts'
import { readAll } from '../../src/p2p/read-all.ts'
import { echoed, echoStream } from '../support/stream-echo.ts'

const ECHO = '/test/echo/1.0.0'
const MISSING = '/test/missing/1.0.0'
const optimistic = { negotiateFully: false, [OPTIMISTIC_SELECT]: true } as NewStreamOptions
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** The `send` calls each new incoming stream made before its handler ran, in the order the streams came. */
interface SendSpy {
  beforeHandler: number[]
}

async function node(stock: boolean, spy?: SendSpy): Promise<WarrenLibp2p> {
  const n = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'], stock })
  await n.handle(
    ECHO,
    (stream: Stream) => {
      const counted = (stream as Stream & { sendsSoFar?: () => number }).sendsSoFar
      if (spy !== undefined && counted !== undefined) spy.beforeHandler.push(counted())
      echoStream(stream)
    },
    { maxInboundStreams: 256, maxOutboundStreams: 256 },
  )
  return n
}

/**
 * Counts, on `listener`'s muxer of `conn` (its side of the connection), the sends of each new incoming stream from
 * the frame that opened it: installed outside every wrapper, so the count starts before any answer.
 */
function spyOnNewStreams(listenerConn: Connection): void {
  const muxer = (listenerConn as unknown as { muxer: { safeDispatchEvent: (t: string, i?: unknown) => boolean } }).muxer
  const dispatch = muxer.safeDispatchEvent.bind(muxer)
  muxer.safeDispatchEvent = (type, init) => {
    if (type === 'stream') {
      const stream = (init as { detail: Stream }).detail
      const send = stream.send.bind(stream)
      let sends = 0
      stream.send = (data) => {
        sends++
        return send(data)
      }
      Object.assign(stream, { sendsSoFar: () => sends })
    }
    return dispatch(type, init)
  }
}

/** Dials `to` from `from` and spies on `to`'s side of the new connection. */
async function spiedConnection(from: WarrenLibp2p, to: WarrenLibp2p): Promise<Connection> {
  const conn = await from.dial(to.getMultiaddrs()[0]!)
  const deadline = Date.now() + 10_000
  let far = to.getConnections(from.peerId).find((c) => c.id !== undefined)
  while (far === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10))
    far = to.getConnections(from.peerId)[0]
  }
  assert.ok(far !== undefined, 'the listener sees the connection')
  spyOnNewStreams(far)
  return conn
}

async function echo(conn: Connection, opts: NewStreamOptions | undefined, bytes: number): Promise<void> {
  const data = randomBytes(bytes)
  const back = await echoed(await conn.newStream(ECHO, opts), data)
  assert.equal(back.byteLength, data.byteLength)
  assert.equal(sha256(back), sha256(data))
}

describe('multistream-select answered from the first bytes', () => {
  const stockSpy: SendSpy = { beforeHandler: [] }
  const warrenSpy: SendSpy = { beforeHandler: [] }
  let stockListener: WarrenLibp2p
  let warrenListener: WarrenLibp2p
  let warren: WarrenLibp2p
  let stock: WarrenLibp2p
  before(async () => {
    stockListener = await node(true, stockSpy)
    warrenListener = await node(false, warrenSpy)
    warren = await node(false)
    stock = await node(true)
  })
  after(async () => {
    await Promise.all([stockListener?.stop(), warrenListener?.stop(), warren?.stop(), stock?.stop()])
  })

  it('upstream: a stock listener answers the two lines of a new stream with a send each before its handler runs', async () => {
    const conn = await spiedConnection(warren, stockListener)
    stockSpy.beforeHandler.length = 0
    await echo(conn, optimistic, 1024)
    assert.deepEqual(stockSpy.beforeHandler, [2])
  })

  it('Warren: a stream from an optimistic Warren dialer is answered with one send before the handler, and carries 2 MiB both ways whole', async () => {
    const conn = await spiedConnection(warren, warrenListener)
    warrenSpy.beforeHandler.length = 0
    const before = optimisticallyAnswered()
    await echo(conn, optimistic, 2 * 1024 * 1024)
    await Promise.all(Array.from({ length: 20 }, () => echo(conn, optimistic, 4096)))
    assert.deepEqual(warrenSpy.beforeHandler, Array(21).fill(1))
    // and identify's streams, answered the same way
    assert.ok(optimisticallyAnswered() - before >= 21)
  })

  it('Warren: streams from a stock dialer are answered in one send when their lines came with the stream, else by handle(), and carry their bytes whole', async () => {
    const conn = await spiedConnection(stock, warrenListener)
    warrenSpy.beforeHandler.length = 0
    await echo(conn, undefined, 2 * 1024 * 1024)
    await Promise.all(Array.from({ length: 20 }, () => echo(conn, undefined, 4096)))
    assert.equal(warrenSpy.beforeHandler.length, 21)
    assert.ok(
      warrenSpy.beforeHandler.every((n) => n === 1 || n === 2),
      `sends before the handler: ${warrenSpy.beforeHandler}`,
    )
    assert.ok(warrenSpy.beforeHandler.includes(1), `sends before the handler: ${warrenSpy.beforeHandler}`)
  })

  for (const [label, dialer, opts] of [
    ['an optimistic Warren dialer', () => warren, optimistic],
    ['a stock dialer', () => stock, undefined],
  ] as const) {
    it(`Warren: a protocol the listener does not handle, from ${label}, is left to handle() and refused (na)`, async () => {
      const conn = await dialer().dial(warrenListener.getMultiaddrs()[0]!)
      const before = optimisticallyAnswered()
      if (opts === undefined) {
        await assert.rejects(conn.newStream(MISSING), { name: 'UnsupportedProtocolError' })
      } else {
        const stream = await conn.newStream(MISSING, opts)
        const closed = new Promise<Error | undefined>((resolve) =>
          stream.addEventListener('close', (evt) => resolve((evt as Event & { error?: Error }).error), { once: true }),
        )
        stream.send(new Uint8Array([1]))
        assert.equal((await closed)?.name, 'UnsupportedProtocolError')
      }
      assert.equal(optimisticallyAnswered(), before)
    })
  }

  it('Warren: a FIN right behind the two lines, with no bytes after them, is left to handle() and the stream ends cleanly', async () => {
    const conn = await warren.dial(warrenListener.getMultiaddrs()[0]!)
    const before = optimisticallyAnswered()
    const stream = await conn.newStream(ECHO, optimistic)
    const reading = readAll(stream, AbortSignal.timeout(10_000), 1024)
    // the stream class's own close: the FIN leaves at once, not after the answer
    await (Object.getPrototypeOf(stream) as Stream).close.call(stream)
    assert.equal((await reading).byteLength, 0)
    assert.equal(optimisticallyAnswered(), before)
  })

  it('Warren: 200 concurrent streams, each sending its bytes and FIN at once, come back whole', async () => {
    const conn = await warren.dial(warrenListener.getMultiaddrs()[0]!)
    const before = optimisticallyAnswered()
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const stream = await conn.newStream(ECHO, optimistic)
        const sent = Buffer.concat([Buffer.from(`#${i}:`), randomBytes(16 * 1024)])
        const reading = readAll(stream, AbortSignal.timeout(30_000), 1024 * 1024)
        stream.send(sent)
        await stream.close()
        assert.equal(sha256(await reading), sha256(sent), `stream ${i}`)
      }),
    )
    assert.ok(optimisticallyAnswered() - before >= 200)
  })

  it('installed without a miss on Warren nodes', () => {
    assert.equal(patchesMissed().has('optimisticHandle'), false)
  })
})
