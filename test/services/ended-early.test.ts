/**
 * A service stream that ends before its reader or its counter is attached: the host answers and then resets the
 * stream at once (a service that resets every connection as it arrives), or the stream closes or is aborted while
 * the answer is on its way. Its 'close' event came and went before anyone listened:
 * - `pipeStream` started on it must end the local side with an error (a reset), never leave it waiting for ever,
 *   and `pipeStream` started with a local connection already gone (a client that reset while the node was being
 *   dialled) must reset the stream, never leave it open on both nodes;
 * - `countStream` started on it must count it as ended with the right cause, never as open for ever;
 * - `readFrame` (a header read) must reject at once, not after its time-out;
 * - a `StreamSocket` (the gateway's HTTP client socket on a stream) must end or fail at once, as the stream did;
 * - the gateway's fast-path upstream must be dead from the start, never handed out by its pool;
 * - a browser node's byte duplex must error its readable side at once.
 * On real nodes and a real TCP connection.
 */
import assert from 'node:assert/strict'
import { createServer, connect as netConnect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Connection, Stream } from '@libp2p/interface'
import { toByteDuplex } from '../../src/browser/byte-stream.ts'
import { Upstream, UpstreamPool } from '../../src/gateway/fast/upstreams.ts'
import { StreamSocket } from '../../src/http/stream-socket.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { pipeStream } from '../../src/p2p/pipe.ts'
import { readFrame } from '../../src/services/frame-io.ts'
import { countStream, StreamCounters } from '../../src/services/stream-counters.ts'
import { eventually } from '../support/eventually.ts'

const PROTO = '/warren-test/ended-early/1.0.0'

describe('a stream that ended before its reader or counter was attached', () => {
  let a: WarrenLibp2p
  let b: WarrenLibp2p
  let conn: Connection
  /** How each stream that said 'W' ended at the far end. */
  const farEnds: Promise<Event & { error?: Error }>[] = []
  before(async () => {
    a = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    b = await createNode({ privateKey: await generateNodeKey(), listen: [] })
    await a.handle(PROTO, (stream: Stream) => {
      stream.addEventListener(
        'message',
        (evt) => {
          const what = (evt.data instanceof Uint8Array ? evt.data : evt.data.subarray())[0]
          // 'R': the far end resets it; 'W': it waits, and records how the stream ends; 'C': a clean end both ways
          // once the dialer ends too
          if (what === 0x52) stream.abort(new Error('reset at once'))
          else if (what === 0x57) farEnds.push(new Promise((r) => stream.addEventListener('close', r)))
          else void stream.close()
        },
        { once: true },
      )
    })
    conn = await b.dial(a.getMultiaddrs()[0]!)
  })
  after(async () => {
    await Promise.all([a.stop(), b.stop()])
  })

  /** A stream whose far end has reset it (or closed it, `C`), after that has arrived here. */
  async function ended(how: 'R' | 'C'): Promise<Stream> {
    const stream = await conn.newStream(PROTO)
    stream.send(Buffer.from(how))
    if (how === 'C') await stream.close()
    await eventually(() => stream.status === (how === 'R' ? 'reset' : 'closed'), {
      timeoutMs: 5_000,
      message: `the stream ${how === 'R' ? 'reset' : 'closed'} by the far side`,
    })
    return stream
  }

  /** A TCP connection pair: the end handed to the pipe, and the client's end. */
  async function socketPair(): Promise<{ local: Socket; client: Socket; close(): void }> {
    const server = createServer({ allowHalfOpen: true })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const accepted = new Promise<Socket>((r) => server.once('connection', r))
    const client = netConnect({ port: (server.address() as { port: number }).port, allowHalfOpen: true })
    const local = await accepted
    return { local, client, close: () => server.close() }
  }

  /** A stream aborted here before anything was sent on it. */
  async function aborted(): Promise<Stream> {
    const stream = await conn.newStream(PROTO)
    stream.abort(new Error('gave up'))
    return stream
  }

  for (const [what, make, errorName] of [
    ['reset by the far side', () => ended('R'), 'StreamResetError'],
    ['aborted here', aborted, 'StreamAbortedError'],
  ] as const) {
    it(`pipeStream on a stream already ${what}: the local side is reset at once`, async () => {
      const stream = await make()
      const { local, client, close } = await socketPair()
      try {
        const clientEnd = new Promise<string>((r) => {
          client.on('end', () => r('clean end'))
          client.on('error', (err: Error & { code?: string }) => r(err.code ?? err.message))
        })
        const res = await pipeStream(stream, local)
        assert.equal(res.error?.name, errorName)
        assert.equal(await clientEnd, 'ECONNRESET')
      } finally {
        client.destroy()
        close()
      }
    })
  }

  it('pipeStream with a local connection already gone: the stream is reset, the far end learns it', async () => {
    const stream = await conn.newStream(PROTO)
    stream.send(Buffer.from('W'))
    await eventually(() => farEnds.length === 1, { timeoutMs: 5_000, message: 'the far end has the stream' })
    const { local, client, close } = await socketPair()
    try {
      local.on('error', () => {})
      const gone = new Promise((r) => local.once('close', r))
      client.resetAndDestroy()
      local.resume()
      await gone
      const res = await pipeStream(stream, local)
      assert.equal(res.error?.message, 'local connection closed before the stream was set up')
      assert.equal(stream.status, 'aborted')
      assert.equal((await farEnds[0]!).error?.name, 'StreamResetError')
    } finally {
      close()
    }
  })

  it('readFrame on a stream already reset: rejects at once with the reset, not after its time-out', async () => {
    const stream = await ended('R')
    const started = Date.now()
    await assert.rejects(readFrame(stream, 60_000), { name: 'StreamResetError' })
    assert.ok(Date.now() - started < 30_000, 'rejected before the time-out')
  })

  it('readFrame on a stream already closed: rejects at once, the header never to come', async () => {
    const stream = await ended('C')
    await assert.rejects(readFrame(stream, 60_000), {
      name: 'FrameError',
      message: 'stream closed before a complete header arrived',
    })
  })

  it('a StreamSocket made around a stream already reset: destroyed with the reset', async () => {
    const socket = new StreamSocket(await ended('R'))
    const err = await new Promise<Error>((r) => socket.once('error', r))
    assert.equal(err.name, 'StreamResetError')
    assert.equal(socket.destroyed, true)
  })

  it('a StreamSocket made around a stream already closed: closes without an error', async () => {
    const socket = new StreamSocket(await ended('C'))
    let error: Error | undefined
    socket.on('error', (e) => {
      error = e
    })
    await new Promise((r) => socket.once('close', r))
    assert.equal(error, undefined)
    assert.equal(socket.destroyed, true)
  })

  it('a browser byte duplex made around a stream already reset: its readable side errors at once', async () => {
    const duplex = toByteDuplex(await ended('R'))
    const reader = duplex.readable.getReader()
    await assert.rejects(reader.read(), (err: Error & { code?: string; cause?: Error }) => {
      assert.equal(err.code, 'ERR_STREAM_ABORTED')
      assert.equal(err.cause?.name, 'StreamResetError')
      return true
    })
  })

  it("the gateway's upstream made around a stream already reset: dead, and its pool never hands it out", () => {
    return ended('R').then((stream) => {
      const pool = new UpstreamPool({ maxIdlePerKey: 4, idleTimeoutMs: 60_000 })
      const up = new Upstream(stream, 'k', pool)
      assert.equal(up.dead, true)
      pool.put(up)
      assert.equal(pool.take('k'), undefined)
    })
  })

  for (const [how, status, cause] of [
    ['R', 'reset', 'reset'],
    ['C', 'closed', 'ok'],
    ['A', 'aborted', 'error'],
  ] as const) {
    it(`countStream on a stream already ${status}: counted as ended (${cause}), none left open`, async () => {
      const stream = how === 'A' ? await aborted() : await ended(how)
      const counters = new StreamCounters()
      countStream(stream, counters, { direction: 'outgoing', service: 'web', peer: 'p' })
      const total = counters.snapshot().outgoing.total
      assert.equal(total.open, 0)
      assert.deepEqual(total.ends, { [cause]: 1 })
    })
  }
})
