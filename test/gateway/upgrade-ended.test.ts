/**
 * An Upgrade (WebSocket) whose client goes away while the upstream is being opened: the gateway's stream to the
 * serving node, or the serving node's connection to its target, is opened after an await, and the client's 'close'
 * can come and go during it. The upstream must then get no request and be closed, and the exchange must end (it holds
 * the gateway's admission slot); joining two duplexes of which one closed already must close the other. Real sockets
 * and Node's HTTP server, against `proxyUpgrade` and `joinDuplexes` themselves.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import { connect, createServer, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { joinDuplexes, proxyUpgrade } from '../../src/http/reverse-proxy.ts'
import { eventually } from '../support/eventually.ts'
import { listen } from '../support/transfer.ts'

/** A TCP server that logs each connection's events. */
async function loggingServer(): Promise<{ port: number; log: string[]; close(): Promise<void> }> {
  const log: string[] = []
  const server = createServer((c) => {
    log.push('accepted')
    c.on('data', (d: Buffer) => log.push(`data ${d.length}`))
    c.on('end', () => log.push('end'))
    c.on('error', (e: NodeJS.ErrnoException) => log.push(`error ${e.code}`))
    c.on('close', () => log.push('close'))
  })
  const l = await listen(server)
  return { port: l.port, log, close: l.close }
}

async function dial(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1')
  await once(s, 'connect')
  return s
}

const within = <T>(p: Promise<T>, ms: number): Promise<T | 'still pending'> =>
  Promise.race([p, new Promise<'still pending'>((r) => setTimeout(() => r('still pending'), ms))])

describe('an Upgrade whose client goes away while the upstream is being opened', () => {
  it('the upstream gets no request and is closed, and the exchange ends', async () => {
    const upstream = await loggingServer()
    let clientGone!: () => void
    const gone = new Promise<void>((r) => (clientGone = r))
    let exchange: Promise<void> | undefined
    const http = createHttpServer()
    http.on('upgrade', (req, socket, head) => {
      socket.on('error', () => {})
      socket.once('close', clientGone)
      exchange = proxyUpgrade(req, socket, head, {
        // the upstream opens only after the client has gone
        open: async () => {
          await gone
          return await dial(upstream.port)
        },
        path: '/chat',
        headers: [],
      })
    })
    const front = await listen(http as never)
    try {
      const client = await dial(front.port)
      client.write('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly bytes')
      await eventually(() => exchange !== undefined, { message: 'the upgrade reached the server' })
      client.resetAndDestroy()
      assert.equal(await within(exchange!, 5_000), undefined, 'the exchange ended')
      await eventually(() => upstream.log.includes('close'), { message: 'the upstream connection closed' })
      assert.deepEqual(upstream.log, ['accepted', 'end', 'close'], 'no byte of the request went upstream')
    } finally {
      await front.close()
      await upstream.close()
    }
  })

  it('joining a duplex that closed already (reset) destroys the other and resolves', async () => {
    const far = await loggingServer()
    const near = await loggingServer()
    try {
      const a = await dial(near.port)
      a.on('error', () => {})
      a.resetAndDestroy()
      await once(a, 'close')
      const b = await dial(far.port)
      b.on('error', () => {})
      assert.equal(await within(joinDuplexes(a, b), 5_000), undefined, 'the join ended')
      assert.equal(b.destroyed, true)
      await eventually(() => far.log.includes('close'), { message: 'the other connection closed' })
      assert.equal(
        far.log.some((l) => l.startsWith('data')),
        false,
        far.log.join(', '),
      )
    } finally {
      await far.close()
      await near.close()
    }
  })
})
