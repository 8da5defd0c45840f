/** The service protocol end to end on an in-process testnet: bytes, half-close, back-pressure, teardown, leaks. */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { eventually } from '../support/eventually.ts'
import { echoServer, hashServer, sinkServer, stalledServer, type TestServer } from '../support/servers.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

function dial(listen: string): Promise<Socket> {
  const i = listen.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const s = connect({ host: listen.slice(0, i), port: Number(listen.slice(i + 1)), allowHalfOpen: true })
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

/** Writes `data`, half-closes, and collects the whole answer. */
async function exchange(listen: string, data: Uint8Array): Promise<Buffer> {
  const s = await dial(listen)
  const chunks: Buffer[] = []
  s.on('data', (c: Buffer) => chunks.push(c))
  const ended = new Promise<void>((resolve, reject) => {
    s.once('end', resolve)
    s.once('error', reject)
  })
  s.end(data)
  await ended
  s.destroy()
  return Buffer.concat(chunks)
}

describe('service streams', () => {
  let net: Testnet
  let echo: TestServer
  let hash: TestServer
  let stalled: TestServer
  let sink: TestServer
  let fwd: { echo: string; hash: string; stalled: string; sink: string }

  before(async () => {
    echo = await echoServer()
    hash = await hashServer()
    stalled = await stalledServer()
    sink = await sinkServer()
    net = await createTestnet(2, {
      services: {
        1: {
          echo: `/tcp/${echo.port}`,
          hash: `/tcp/${hash.port}`,
          stalled: `/tcp/${stalled.port}`,
          sink: `/tcp/${sink.port}`,
        },
      },
    })
    const add = async (service: string) =>
      (await net.nodes[0]!.addForward({ node: 'n1', service, listen: '127.0.0.1:0' })).listen
    fwd = { echo: await add('echo'), hash: await add('hash'), stalled: await add('stalled'), sink: await add('sink') }
  })

  after(async () => {
    await net.stop()
    await Promise.all([echo.close(), hash.close(), stalled.close(), sink.close()])
  })

  it('carries 32 MiB each way with SHA-256 equality', async () => {
    const data = randomBytes(32 * 1024 * 1024)
    const back = await exchange(fwd.echo, data)
    assert.equal(back.length, data.length)
    assert.equal(sha(back), sha(data))
  })

  it('preserves half-close: the client shuts its write side and still gets the whole answer', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17)
    const answer = (await exchange(fwd.hash, data)).toString()
    assert.equal(answer, `${data.length} ${sha(data)}`)
  })

  it('passes on a FIN sent before the stream was open (a client that half-closes at once)', async () => {
    for (let round = 0; round < 5; round++) {
      const s = await dial(fwd.hash)
      s.end() // nothing to send: the FIN reaches the forward while it is still opening the stream
      const chunks: Buffer[] = []
      s.on('data', (c: Buffer) => chunks.push(c))
      await new Promise<void>((resolve, reject) => {
        s.once('end', resolve)
        s.once('error', reject)
        setTimeout(() => reject(new Error('no answer: the service never saw the FIN')), 10_000).unref()
      })
      assert.equal(Buffer.concat(chunks).toString(), `0 ${sha(new Uint8Array(0))}`, `round ${round}`)
    }
  })

  it('delivers every byte to a slow reader after the far side has closed', async () => {
    for (let round = 0; round < 5; round++) {
      const data = randomBytes(6 * 1024 * 1024)
      const s = await dial(fwd.echo)
      const accepted = echo.accepted()
      s.pause() // the reader falls behind: the stream pauses and the echo finishes before we read
      s.end(data)
      await eventually(() => echo.accepted() > accepted && echo.sockets.size === 0, {
        message: 'the echo server closed its connection',
      })
      const chunks: Buffer[] = []
      s.on('data', (c: Buffer) => chunks.push(c))
      await new Promise<void>((resolve, reject) => {
        s.once('end', resolve)
        s.once('error', reject)
        s.resume()
      })
      assert.equal(sha(Buffer.concat(chunks)), sha(data), `round ${round}`)
    }
  })

  it('serves 200 concurrent connections, each correct', async () => {
    const payloads = Array.from({ length: 200 }, (_, i) => randomBytes(16 * 1024 + i))
    const answers = await Promise.all(payloads.map((p) => exchange(fwd.echo, p)))
    for (const [i, a] of answers.entries()) assert.equal(sha(a), sha(payloads[i]!), `connection ${i}`)
    await eventually(() => net.nodes[1]!.status().streams.active === 0, {
      timeoutMs: 5_000,
      message: 'no active stream at the host',
    })
  })

  it('holds back-pressure: a target that does not read stops the sender within bounded memory', async () => {
    const s = await dial(fwd.stalled)
    const chunk = randomBytes(256 * 1024)
    let accepted = 0
    // write until the pipe stops draining for 1 s (bounded: at most 512 MiB offered)
    for (let i = 0; i < 2048; i++) {
      accepted += chunk.length
      if (!s.write(chunk)) {
        const drained = await Promise.race([
          new Promise<boolean>((r) => s.once('drain', () => r(true))),
          sleep(1_000, false),
        ])
        if (!drained) break
      }
    }
    // window (4 MiB) + stream read buffer (8 MiB) + socket buffers on three hops: far below what was offered
    assert.ok(accepted < 96 * 1024 * 1024, `sender kept going: ${accepted} bytes accepted`)
    const rssBefore = process.memoryUsage().rss
    await sleep(500) // a fixed wait on purpose: memory must not grow while the target stalls
    assert.ok(process.memoryUsage().rss - rssBefore < 32 * 1024 * 1024, 'memory grew while the target stalled')
    // the target starts reading: everything offered arrives intact
    const target = [...stalled.sockets].at(-1)!
    let received = 0
    target.on('data', (d: Buffer) => (received += d.length))
    target.resume()
    s.end()
    await eventually(() => received === accepted, { timeoutMs: 20_000, message: 'every accepted byte at the target' })
    const clientClosed = new Promise((r) => s.once('close', r))
    target.end()
    await clientClosed
  })

  it("keeps a fast sender's stream queue short while the path is the bottleneck", async () => {
    const s = await dial(fwd.sink)
    const chunk = Buffer.alloc(1024 * 1024, 7)
    let peak = 0
    const sampler = setInterval(() => {
      for (const c of net.nodes[0]!.libp2p.getConnections()) {
        for (const st of c.streams) peak = Math.max(peak, st.writeBufferLength)
      }
    }, 20)
    try {
      const closed = new Promise((r) => s.once('close', r))
      for (let i = 0; i < 128; i++) {
        if (!s.write(chunk)) await new Promise((r) => s.once('drain', r))
      }
      s.end()
      await closed
    } finally {
      clearInterval(sampler)
    }
    // the queue may hold one socket read beyond the low-water mark, never the body (it reached 490 MiB before)
    assert.ok(peak < 4 * 1024 * 1024, `a stream queued ${peak} bytes`)
  })

  it('tears down the target when the client resets, and the client when the target resets', async () => {
    const newTarget = async (server: TestServer): Promise<Socket> => {
      const before = new Set(server.sockets)
      await eventually(() => [...server.sockets].some((t) => !before.has(t)), {
        timeoutMs: 5_000,
        message: 'a new target connection',
      })
      return [...server.sockets].find((t) => !before.has(t))!
    }
    const pending = newTarget(sink)
    const s = await dial(fwd.sink)
    s.write('hello')
    const target = await pending
    const targetClosed = new Promise((r) => target.once('close', r))
    s.resetAndDestroy()
    await targetClosed

    const next = newTarget(stalled)
    const c = await dial(fwd.stalled)
    c.write('x')
    const target2 = await next
    const clientClosed = new Promise((r) => c.once('close', r))
    c.on('error', () => {})
    target2.resetAndDestroy()
    await clientClosed
  })

  it('leaks no stream or socket once connections end', async () => {
    await Promise.all(Array.from({ length: 20 }, () => exchange(fwd.echo, randomBytes(1024))))
    await eventually(() => net.nodes[1]!.status().streams.active === 0, {
      timeoutMs: 5_000,
      message: 'no active stream at the host',
    })
    await eventually(() => net.nodes[0]!.forwards().every((f) => f.active === 0), {
      timeoutMs: 5_000,
      message: 'no active forward connection',
    })
    await eventually(() => net.nodes[0]!.libp2p.getConnections().every((c) => c.streams.length === 0), {
      timeoutMs: 5_000,
      message: 'no open libp2p stream',
    })
    await eventually(() => echo.sockets.size === 0, { timeoutMs: 5_000, message: 'every echo connection closed' })
  })
})

describe('many streams on one connection', () => {
  it('opens 300 service streams to one node at once (past libp2p default of 64 per protocol)', async () => {
    const echo = await echoServer()
    const net = await createTestnet(2, { services: { 1: { echo: `/tcp/${echo.port}` } } })
    try {
      const streams = await Promise.all(Array.from({ length: 300 }, () => net.nodes[0]!.openService('n1', 'echo')))
      assert.equal(streams.length, 300)
      assert.equal(net.nodes[1]!.status().streams.active, 300)
      for (const s of streams) s.abort(new Error('done'))
    } finally {
      await net.stop()
      await echo.close()
    }
  })
})
