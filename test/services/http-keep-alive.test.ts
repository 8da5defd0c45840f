/**
 * A `"type": "http"` service keeps its connection to the target for the caller's next request only while the target
 * cannot have been idle on it for its `Keep-Alive: timeout=` hint less 2 s, counted from when the request was sent.
 * A target's idle timer starts once it has written its response, which a slow caller may still be reading: a request
 * sent on that connection later could meet the target's close, and an upload cannot be sent again (a 502).
 *
 * Real nodes, a forward, Node's HTTP server as the target with a 3-s keep-alive (hint `timeout=3`), and one keep-alive
 * client connection: a response read at once leaves the connection for the next request; one held back 1.5 s makes
 * the next request (an upload, checked by SHA-256) go on a new connection, and the old one is closed by the host,
 * not by the target.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Agent, createServer, type IncomingMessage, request } from 'node:http'
import type { Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createTestnet, type Testnet } from '../../src/testing/testnet.ts'
import { ByteSource, listen, MiB, pace, pump, readPaced } from '../support/transfer.ts'

interface Target {
  port: number
  /** Connections accepted, and how each ended so far: 'client' (the host's FIN) or 'server' (its own time-out). */
  connections: ('open' | 'client' | 'server')[]
  close(): Promise<void>
}

async function target(): Promise<Target> {
  const connections: Target['connections'] = []
  const server = createServer({ keepAliveTimeout: 3_000 }, (req, res) => {
    const blob = /^\/blob\/(\d+)$/.exec(req.url ?? '')
    if (blob !== null) {
      res.writeHead(200, { 'content-length': Number(blob[1]) })
      void pump(new ByteSource(Number(blob[1])), res).catch(() => {})
      return
    }
    void readPaced(req, pace.fast).then((r) => res.end(`${r.bytes} ${r.sha256}`))
  })
  server.on('connection', (s: Socket) => {
    const k = connections.push('open') - 1
    s.once('end', () => {
      if (connections[k] === 'open') connections[k] = 'client'
    })
    s.once('close', () => {
      if (connections[k] === 'open') connections[k] = 'server'
    })
  })
  const l = await listen(server as never)
  return { port: l.port, connections, close: l.close }
}

/** One request on the client's single keep-alive connection; the body is read after `holdMs`. */
function exchange(
  agent: Agent,
  port: number,
  method: string,
  path: string,
  holdMs: number,
  body?: Buffer,
): Promise<{ status: number; body: Buffer; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent }, (res: IncomingMessage) => {
      res.pause()
      const chunks: Buffer[] = []
      setTimeout(() => {
        res.on('data', (d: Buffer) => chunks.push(d))
        res.once('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), reused: req.reusedSocket }),
        )
        res.resume()
      }, holdMs)
      res.once('error', reject)
    })
    req.once('error', reject)
    req.end(body)
  })
}

describe('type http: the connection to the target after a response held back', () => {
  let net: Testnet
  let t: Target
  let port = 0
  before(async () => {
    t = await target()
    net = await createTestnet(2, { services: { 1: { app: { target: `/tcp/${t.port}`, type: 'http' } } } })
    const fwd = await net.nodes[0]!.addForward({ node: 'n1', service: 'app', listen: '127.0.0.1:0' })
    port = Number(fwd.listen.slice(fwd.listen.lastIndexOf(':') + 1))
  })
  after(async () => {
    await net?.stop()
    await t?.close()
  })

  it('a response read at once leaves the connection for the next request', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const before = t.connections.length
      const a = await exchange(agent, port, 'GET', '/blob/1000', 0)
      assert.equal(a.body.length, 1000)
      const b = await exchange(agent, port, 'GET', '/blob/2000', 0)
      assert.equal(b.reused, true, 'the client kept its connection')
      assert.equal(createHash('sha256').update(b.body).digest('hex'), ByteSource.digest(2000))
      // the host's check of the target opens the connection its first request then uses
      assert.equal(t.connections.length - before, 1)
    } finally {
      agent.destroy()
    }
  })

  it('after a response held back past the hint less 2 s, an upload goes on a new connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const before = t.connections.length
      const a = await exchange(agent, port, 'GET', `/blob/${MiB}`, 1_500)
      assert.equal(createHash('sha256').update(a.body).digest('hex'), ByteSource.digest(MiB))
      const upload = new ByteSource(4 * MiB).next(4 * MiB)!
      const b = await exchange(agent, port, 'POST', '/hash', 0, Buffer.from(upload))
      assert.equal(b.reused, true, 'the client kept its connection')
      assert.equal(b.status, 200)
      assert.equal(b.body.toString(), `${upload.length} ${createHash('sha256').update(upload).digest('hex')}`)
      await sleep(100)
      assert.deepEqual(
        t.connections.slice(before),
        ['client', 'open'],
        'the host closed the first, the upload went on a second',
      )
    } finally {
      agent.destroy()
    }
  })
})
