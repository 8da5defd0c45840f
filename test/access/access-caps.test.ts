/**
 * The access port's limits on its clients: a second request head trickled byte by byte on a keep-alive
 * connection is cut at proxy.headersTimeoutMs (on the fast gateway path and on Node's HTTP path), and
 * connections past proxy.maxConnectionsPerClient / proxy.maxConnections are closed at once.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConfigInput } from '../../src/config/schema.ts'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { eventually } from '../support/eventually.ts'
import { rawExchange } from '../support/raw-client.ts'
import { ByteSource, blobHttpServer } from '../support/transfer.ts'

const BLOB = 64 * 1024

async function start(proxy: NonNullable<ConfigInput['proxy']>, logs: string[]) {
  const blob = await blobHttpServer()
  const net: Testnet = await createTestnet(2, {
    services: { 1: { blob: { target: `/tcp/${blob.port}`, type: 'http' } } },
    config: { 0: { proxy } },
    log: (level, message) => {
      if (level === 'warn') logs.push(message)
    },
  })
  const listen = net.nodes[0]!.status().access!.listen
  return {
    port: Number(listen.slice(listen.lastIndexOf(':') + 1)),
    stop: async () => {
      await net.stop()
      await blob.close()
    },
  }
}

/** A keep-alive connection that reads responses one at a time. */
class Conn {
  readonly socket: Socket
  #buf = Buffer.alloc(0)
  #wake: (() => void) | undefined
  ended = false
  error: string | undefined

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d])
      this.#wake?.()
    })
    this.socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e.code
    })
    this.socket.on('close', () => {
      this.ended = true
      this.#wake?.()
    })
  }

  /** The next response (by Content-Length), or what came before the connection closed. */
  async response(): Promise<{ status: string; body: Buffer; closed: boolean }> {
    for (let i = 0; i < 400; i++) {
      const at = this.#buf.indexOf('\r\n\r\n')
      if (at >= 0) {
        const head = this.#buf.subarray(0, at).toString()
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? -1)
        if (len >= 0 && this.#buf.length >= at + 4 + len) {
          const body = this.#buf.subarray(at + 4, at + 4 + len)
          this.#buf = this.#buf.subarray(at + 4 + len)
          return { status: head.slice(0, head.indexOf('\r\n')), body, closed: false }
        }
      }
      if (this.ended) return { status: '', body: this.#buf, closed: true }
      await new Promise<void>((r) => {
        this.#wake = r
        setTimeout(r, 100)
      })
    }
    throw new Error('no response within 40 s')
  }

  /** Resolves once the connection is closed. */
  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((r) => this.socket.once('close', () => r()))
  }
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

describe('a trickled second request head is cut at proxy.headersTimeoutMs', () => {
  const logs: string[] = []
  let s: Awaited<ReturnType<typeof start>>
  before(async () => {
    s = await start({ headersTimeoutMs: 400 }, logs)
  })
  after(async () => s?.stop())

  for (const [path, first] of [
    [
      'the fast gateway path',
      (port: number) => `GET /http/n1/blob/blob/${BLOB} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
    ],
    ['Node’s HTTP path (PAC file)', (port: number) => `GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`],
  ] as const) {
    it(`on ${path}`, async () => {
      const c = new Conn(s.port)
      c.socket.write(first(s.port))
      const r1 = await c.response()
      assert.equal(r1.status, 'HTTP/1.1 200 OK')
      if (path.includes('fast')) assert.equal(sha256(r1.body), ByteSource.digest(BLOB))
      // the second head, one byte every 50 ms (at most 400 bytes: 20 s), never completed
      const second = Buffer.from(
        `GET /http/n1/blob/blob/1 HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nX-Pad: ${'a'.repeat(400)}`,
      )
      let sent = 0
      while (!c.ended && sent < second.length) {
        c.socket.write(second.subarray(sent, sent + 1))
        sent++
        await sleep(50)
      }
      const r2 = await c.response()
      await c.closed()
      assert.ok(sent < second.length, 'cut before the trickle ran out')
      assert.equal(r2.status, 'HTTP/1.1 408 Request Timeout')
      assert.equal(
        r2.body.toString(),
        '408 Request Timeout\n\nERR_TIMEOUT: the request head did not arrive within 400 ms\n\nWhat to do: Send the whole request head at once, or raise proxy.headersTimeoutMs.\n',
      )
    })
  }

  it('an idle keep-alive connection is not cut by the head deadline', async () => {
    const c = new Conn(s.port)
    c.socket.write(`GET /http/n1/blob/blob/${BLOB} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\n\r\n`)
    assert.equal((await c.response()).status, 'HTTP/1.1 200 OK')
    await sleep(1_000) // 2.5 deadlines idle
    c.socket.write(`GET /http/n1/blob/blob/${BLOB} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nConnection: close\r\n\r\n`)
    const r = await c.response()
    assert.equal(r.status, 'HTTP/1.1 200 OK')
    assert.equal(sha256(r.body), ByteSource.digest(BLOB))
    c.socket.destroy()
  })
})

describe('connection caps on the access port', () => {
  const logs: string[] = []
  let perClient: Awaited<ReturnType<typeof start>>
  let total: Awaited<ReturnType<typeof start>>
  before(async () => {
    perClient = await start({ maxConnectionsPerClient: 3 }, logs)
    total = await start({ maxConnections: 3 }, logs)
  })
  after(async () => {
    await perClient?.stop()
    await total?.stop()
  })

  /** Opens `n` connections, each proven served by one keep-alive request. */
  async function hold(port: number, n: number): Promise<Conn[]> {
    const out: Conn[] = []
    for (let i = 0; i < n; i++) {
      const c = new Conn(port)
      c.socket.write(`GET /http/n1/blob/blob/${BLOB} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
      const r = await c.response()
      assert.equal(r.status, 'HTTP/1.1 200 OK')
      assert.equal(sha256(r.body), ByteSource.digest(BLOB))
      out.push(c)
    }
    return out
  }

  it('a client that half-closes before its first byte is let go at once, and holds no slot', async () => {
    const { port } = perClient
    const silent = Array.from({ length: 3 }, () => new Conn(port))
    for (const c of silent) c.socket.end()
    const started = Date.now()
    await Promise.all(silent.map((c) => c.closed()))
    assert.ok(Date.now() - started < 5_000, 'closed well before the 30-s head deadline')
    for (const c of silent) assert.equal(c.error, undefined)
    const [served] = await hold(port, 1)
    served!.socket.destroy()
  })

  const get = (port: number) =>
    Buffer.from(`GET /http/n1/blob/blob/${BLOB} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)

  for (const [name, which, message] of [
    [
      'proxy.maxConnectionsPerClient',
      () => perClient,
      /^the access port refused a connection: (uid \d+|address 127\.0\.0\.1) holds 3 connections \(proxy\.maxConnectionsPerClient is 3\)$/,
    ],
    [
      'proxy.maxConnections',
      () => total,
      /^the access port refused a connection: 3 connections are open \(proxy\.maxConnections\)$/,
    ],
  ] as const) {
    it(`${name}: the connection past the cap is closed at once; one is served again after a close`, async () => {
      const { port } = which()
      const held = await hold(port, 3)
      const r = await rawExchange('127.0.0.1', port, get(port))
      assert.equal(r.bytes, 0)
      assert.ok(r.ending === 'end' || r.ending === 'error:ECONNRESET', r.ending)
      assert.ok(
        logs.some((l) => message.test(l)),
        logs.join('\n'),
      )
      const gone = held.pop()!
      gone.socket.end()
      await gone.closed()
      // the server sees the close a moment later: each attempt a whole exchange
      const again = await eventually(
        async () => {
          const r = await rawExchange('127.0.0.1', port, get(port))
          return r.bytes === 0 ? undefined : r
        },
        { timeoutMs: 2_000, message: 'a connection slot came free' },
      )
      assert.equal(again.status, 'HTTP/1.1 200 OK')
      assert.equal(again.bodySha256, ByteSource.digest(BLOB))
      assert.equal(again.ending, 'end')
      for (const c of held) c.socket.destroy()
    })
  }
})
