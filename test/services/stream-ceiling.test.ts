/**
 * The per-connection stream ceiling follows `limits`: with the limits raised, thousands of concurrent forwarded
 * connections to one node all work; past a small limit the forward counts the documented error and the client
 * gets a prompt reset, not an accepted connection that is closed cleanly.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { after, describe, test } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { ConfigInput } from '../../src/config/schema.ts'
import { loadNodeKey } from '../../src/identity/keys.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'
import { echoServer, type TestServer } from '../support/servers.ts'

type Limits = ConfigInput['limits']

interface Pair {
  a: TestDaemon
  b: TestDaemon
  /** B's forward to A's `echo`, host:port. */
  forward: { host: string; port: number; listen: string }
  close(): Promise<void>
}

/** A exposes `echo` (at `port`) to B; B forwards it. Each daemon gets its own `limits`. */
async function startPair(port: number, aLimits: Limits, bLimits: Limits): Promise<Pair> {
  const bHome = await makeHome(testConfig({ limits: bLimits }))
  const bId = peerIdFromPrivateKey(await loadNodeKey(bHome.key)).toString()
  const aHome = await makeHome(testConfig({ limits: aLimits, peers: { b: bId }, services: { echo: `/tcp/${port}` } }))
  const a = await TestDaemon.start(aHome)
  const ident = await a.identity()
  await writeConfig(bHome, testConfig({ limits: bLimits, peers: { a: ident.ticket } }))
  const b = await TestDaemon.start(bHome)
  const c = await b.client()
  try {
    const info = await c.forwardAdd({ node: 'a', service: 'echo', listen: '127.0.0.1:0' })
    // the forward's check stream counts against the limits until it has closed both ways: the tests start after
    await eventually(async () => (await c.status()).streams.outgoing.active === 0, {
      message: "the forward's check stream closed",
    })
    const m = /^(.*):(\d+)$/.exec(info.listen)!
    return {
      a,
      b,
      forward: { host: m[1]!, port: Number(m[2]), listen: info.listen },
      close: async () => {
        await Promise.all([a.stop(), b.stop()])
        await Promise.all([removeHome(aHome), removeHome(bHome)])
      },
    }
  } finally {
    c.close()
  }
}

async function forwardInfo(d: TestDaemon) {
  const c = await d.client()
  try {
    return (await c.forwards())[0]!
  } finally {
    c.close()
  }
}

/** Connects, sends `payload` and resolves with the socket once the whole payload came back (sha256 compared). */
function echoed(host: string, port: number, payload: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen: true })
    const got: Buffer[] = []
    let n = 0
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`no full echo within 60 s (${n} of ${payload.length} bytes)`))
    }, 60_000)
    s.on('data', (d: Buffer) => {
      got.push(d)
      n += d.length
      if (n < payload.length) return
      clearTimeout(timer)
      s.removeAllListeners('data')
      const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
      if (sha(Buffer.concat(got)) !== sha(payload)) reject(new Error('echo differs from what was sent'))
      else resolve(s)
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    s.write(payload)
  })
}

/** Ends `s` and resolves once the far side's FIN came back (a clean close both ways). */
function closeCleanly(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('end', () => {
      s.destroy()
      resolve()
    })
    s.once('error', reject)
    s.resume()
    s.end()
  })
}

/** Connects and resolves with how the connection ended without an answer: the error code, or 'end' for a FIN. */
function refused(host: string, port: number): Promise<{ how: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const s = connect({ host, port })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error('the connection past the limit stayed open for 10 s'))
    }, 10_000)
    const done = (how: string): void => {
      clearTimeout(timer)
      s.destroy()
      resolve({ how, ms: performance.now() - t0 })
    }
    s.on('data', () => done('data'))
    s.once('end', () => done('end'))
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
    s.write('x')
  })
}

describe('per-connection stream ceiling', () => {
  let echo: TestServer
  const pairs: Pair[] = []
  after(async () => {
    await Promise.all(pairs.map((p) => p.close()))
    await echo?.close()
  })

  test('with limits raised to 6000, 5000 concurrent forwarded connections to one node all carry their bytes', async () => {
    echo = await echoServer()
    const limits = { maxStreams: 6_000, maxStreamsPerPeer: 6_000 }
    const pair = await startPair(echo.port, limits, limits)
    pairs.push(pair)
    const N = 5_000
    const sockets: Socket[] = []
    try {
      for (let i = 0; i < N; i += 250) {
        const batch = Array.from({ length: Math.min(250, N - i) }, () =>
          echoed(pair.forward.host, pair.forward.port, randomBytes(256)),
        )
        sockets.push(...(await Promise.all(batch)))
      }
      assert.equal(sockets.length, N)
      const open = await forwardInfo(pair.b)
      assert.equal(open.active, N, 'all connections open at once')
      assert.equal(open.failed, 0, JSON.stringify(open.lastError))
      await Promise.all(sockets.map((s) => closeCleanly(s)))
      await eventually(async () => (await forwardInfo(pair.b)).active === 0, { message: 'all connections ended' })
      const end = await forwardInfo(pair.b)
      assert.equal(end.failed, 0, JSON.stringify(end.lastError))
      assert.equal(end.total, N)
    } finally {
      for (const s of sockets) s.destroy()
    }
  })

  test('past the host node limit the client is reset at once and the forward records ERR_OVERLOADED', async () => {
    const pair = await startPair(echo.port, { maxStreamsPerPeer: 4 }, {})
    pairs.push(pair)
    const sockets = await Promise.all(
      Array.from({ length: 4 }, () => echoed(pair.forward.host, pair.forward.port, randomBytes(64))),
    )
    try {
      const r = await refused(pair.forward.host, pair.forward.port)
      assert.equal(r.how, 'ECONNRESET')
      // the client's reset can come a moment before the forward has recorded why
      const info = await eventually(
        async () => {
          const i = await forwardInfo(pair.b)
          return i.failed === 1 && /ERR_OVERLOADED/.test(pair.b.stderr) && i
        },
        { message: 'the forward records the refusal and logs it' },
      )
      assert.equal(info.lastError?.code, 'ERR_OVERLOADED')
      assert.match(
        info.lastError!.message,
        /refused "echo": this node is at its limit of 4 open service streams per peer/,
      )
    } finally {
      for (const s of sockets) s.destroy()
    }
  })

  test('past this node limit per connection the client is reset at once and the forward records ERR_TOO_MANY_STREAMS', async () => {
    const pair = await startPair(echo.port, {}, { maxStreamsPerPeer: 4, maxPublicStreamsPerPeer: 4 })
    pairs.push(pair)
    const sockets = await Promise.all(
      Array.from({ length: 4 }, () => echoed(pair.forward.host, pair.forward.port, randomBytes(64))),
    )
    try {
      const r = await refused(pair.forward.host, pair.forward.port)
      assert.equal(r.how, 'ECONNRESET')
      const info = await forwardInfo(pair.b)
      assert.equal(info.failed, 1)
      assert.equal(info.lastError?.code, 'ERR_TOO_MANY_STREAMS')
      assert.match(info.lastError!.message, /already has its limit of service streams open to node /)
      // the streams under the limit still work
      const again = await echoed(pair.forward.host, pair.forward.port, randomBytes(64)).catch((e: Error) => e)
      assert.ok(again instanceof Error, 'a fifth connection while four are open is refused again')
      await Promise.all(sockets.splice(0, 1).map((s) => closeCleanly(s)))
      const fifth = await eventually(
        () => echoed(pair.forward.host, pair.forward.port, randomBytes(64)).catch(() => undefined),
        { message: 'a slot frees once a connection ends' },
      )
      sockets.push(fifth)
    } finally {
      for (const s of sockets) s.destroy()
    }
  })
})
