/**
 * Write coalescing and frame batching (src/p2p/patches/coalesce.ts) on real sockets: a TCP connection's writes of one
 * event-loop turn reach the peer in one read, a muxer's frames of one turn make one send, back-pressure still
 * holds, batched frames survive a node stopping, and libp2p nodes over TCP and WebSockets carry many small
 * messages intact.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import type { MultiaddrConnection, Stream, Upgrader } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'
import { batchFrames, coalesceSocketWrites } from '../../src/p2p/patches/coalesce.ts'
import { eventually } from '../support/eventually.ts'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** A TCP server whose first connection is handed out; resolves with its port. */
async function server(): Promise<{ srv: Server; port: number; conn: Promise<Socket> }> {
  let take: (s: Socket) => void = () => {}
  const conn = new Promise<Socket>((resolve) => {
    take = resolve
  })
  const srv = createServer((s) => {
    s.on('error', () => {}) // the test resets the connection when it is done
    take(s)
  })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  return { srv, port: (srv.address() as { port: number }).port, conn }
}

/** A MultiaddrConnection from @libp2p/tcp's own dialer: its upgrader step hands the raw connection back. */
async function tcpConnection(port: number): Promise<MultiaddrConnection> {
  let handed: MultiaddrConnection | undefined
  const upgrader = {
    upgradeOutbound: async (maConn: MultiaddrConnection) => {
      handed = maConn
      return {}
    },
  } as unknown as Upgrader
  const transport = tcp()({ logger: defaultLogger() })
  await transport.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}`), {
    upgrader,
    signal: AbortSignal.timeout(5_000),
  } as Parameters<typeof transport.dial>[1])
  assert.ok(handed !== undefined)
  return handed
}

describe('write coalescing', () => {
  it('sends the writes of one turn in one socket write', async () => {
    const { srv, port, conn } = await server()
    const maConn = await tcpConnection(port)
    try {
      assert.equal(coalesceSocketWrites(maConn), true)
      const peer = await conn
      const reads: Buffer[] = []
      peer.on('data', (b: Buffer) => reads.push(b))
      const parts = Array.from({ length: 200 }, (_, i) => Buffer.from(`message ${i};`))
      for (const p of parts) maConn.send(p)
      const total = Buffer.concat(parts)
      await eventually(() => Buffer.concat(reads).length >= total.length, {
        timeoutMs: 5_000,
        intervalMs: 10,
        message: 'every byte at the peer',
      }).catch(() => {}) // the assertions below say what arrived
      assert.deepEqual(Buffer.concat(reads), total)
      // 200 sends (400 buffers: @libp2p/tcp writes each one) left in one writev, so the peer read them at once
      assert.equal(reads.length, 1, `${reads.length} reads`)
    } finally {
      maConn.abort(new Error('test over'))
      srv.close()
      ;(await conn).destroy()
    }
  })

  it('keeps back-pressure: reports a full socket, drains, and delivers every byte in order', async () => {
    const { srv, port, conn } = await server()
    const maConn = await tcpConnection(port)
    try {
      coalesceSocketWrites(maConn)
      const peer = await conn
      peer.pause()
      const data = randomBytes(8 * 1024 * 1024)
      let full = 0
      const received: Buffer[] = []
      peer.on('data', (b: Buffer) => received.push(b))
      for (let off = 0; off < data.length; off += 1024) {
        if (!maConn.send(data.subarray(off, off + 1024))) {
          full++
          // a fixed delay on purpose: the peer starts reading only later, so the sender must wait for 'drain'
          if (full === 1) setTimeout(() => peer.resume(), 200)
          await maConn.onDrain({ signal: AbortSignal.timeout(10_000) })
        }
      }
      assert.ok(full > 0, 'send() never reported a full socket')
      await eventually(() => Buffer.concat(received).length >= data.length, {
        message: 'every byte at the peer',
      }).catch(() => {}) // the checksum below says what arrived
      assert.equal(sha(Buffer.concat(received)), sha(data))
    } finally {
      maConn.abort(new Error('test over'))
      srv.close()
      ;(await conn).destroy()
    }
  })

  it("batches a muxer's sends of one turn into one send on the connection below", async () => {
    const { srv, port, conn } = await server()
    const maConn = await tcpConnection(port)
    try {
      let sends = 0
      const sendData = (maConn as unknown as { sendData: (d: unknown) => unknown }).sendData.bind(maConn)
      ;(maConn as unknown as { sendData: (d: unknown) => unknown }).sendData = (d) => {
        sends++
        return sendData(d)
      }
      batchFrames(maConn)
      const peer = await conn
      const reads: Buffer[] = []
      peer.on('data', (b: Buffer) => reads.push(b))
      const parts = Array.from({ length: 200 }, (_, i) => Buffer.from(`frame ${i};`))
      for (const p of parts) assert.equal(maConn.send(p), true)
      assert.equal(sends, 0, 'nothing is sent before the turn ends')
      const total = Buffer.concat(parts)
      await eventually(() => Buffer.concat(reads).length >= total.length, {
        timeoutMs: 5_000,
        intervalMs: 10,
        message: 'every byte at the peer',
      }).catch(() => {}) // the assertions below say what arrived
      assert.deepEqual(Buffer.concat(reads), total)
      assert.equal(sends, 1)
    } finally {
      maConn.abort(new Error('test over'))
      srv.close()
      ;(await conn).destroy()
    }
  })

  it('delivers frames still batched when the node stops (flushed before the transport closes)', async () => {
    const a = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    const b = await createNode({ privateKey: await generateNodeKey(), listen: [] })
    try {
      const got: Buffer[] = []
      const done = new Promise<void>((resolve) => {
        void a.handle('/warren-test/sink/1.0.0', (stream: Stream) => {
          stream.addEventListener('message', (evt) => {
            got.push(Buffer.from(evt.data.subarray()))
          })
          stream.addEventListener('close', () => resolve())
        })
      })
      const stream = await b.dialProtocol(a.getMultiaddrs()[0]!, '/warren-test/sink/1.0.0')
      const sent = Array.from({ length: 100 }, (_, i) => Buffer.from(`last words ${i};`))
      for (const m of sent) stream.send(m)
      await b.stop() // same turn: the frames are still in the batch
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        done,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('the stream never closed')), 10_000)
        }),
      ]).finally(() => clearTimeout(timer))
      assert.equal(Buffer.concat(got).toString(), Buffer.concat(sent).toString())
    } finally {
      await b.stop()
      await a.stop()
    }
  })

  for (const transport of ['tcp', 'ws'] as const) {
    it(`carries 2000 small messages intact between two nodes over ${transport}`, async () => {
      const listen = transport === 'tcp' ? '/ip4/127.0.0.1/tcp/0' : '/ip4/127.0.0.1/tcp/0/ws'
      const a = await createNode({ privateKey: await generateNodeKey(), listen: [listen] })
      const b = await createNode({ privateKey: await generateNodeKey(), listen: [] })
      try {
        await a.handle('/warren-test/echo/1.0.0', (stream: Stream) => {
          stream.addEventListener('message', (evt) => {
            stream.send(evt.data)
          })
          stream.addEventListener('remoteCloseWrite', () => void stream.close())
        })
        const stream = await b.dialProtocol(a.getMultiaddrs()[0]!, '/warren-test/echo/1.0.0')
        const sent: Buffer[] = []
        const got: Uint8Array[] = []
        stream.addEventListener('message', (evt) => {
          got.push(evt.data.subarray())
        })
        const ended = new Promise<void>((resolve) => stream.addEventListener('remoteCloseWrite', () => resolve()))
        for (let burst = 0; burst < 20; burst++) {
          for (let i = 0; i < 100; i++) {
            const m = Buffer.from(`${burst}:${i}:${randomBytes(8).toString('hex')};`)
            sent.push(m)
            if (!stream.send(m)) await stream.onDrain({ signal: AbortSignal.timeout(5_000) })
          }
          await new Promise((r) => setImmediate(r))
        }
        await stream.close({ signal: AbortSignal.timeout(10_000) })
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          ended,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('the echo never ended')), 10_000)
          }),
        ]).finally(() => clearTimeout(timer))
        assert.equal(sha(Buffer.concat(got)), sha(Buffer.concat(sent)))
      } finally {
        await b.stop()
        await a.stop()
      }
    })
  }
})
