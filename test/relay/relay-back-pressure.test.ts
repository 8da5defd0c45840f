/**
 * A circuit's back-pressure through the relay (src/relay/server/splice.ts), in one process on 127.0.0.1: when the
 * receiving end stops reading, the sender stalls after about the windows and socket buffers on the way; once the
 * receiver reads again, the paused streams resume and every byte arrives, checked by sha256. (What the relay's
 * memory does under load is measured by bench/relay.ts.)
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { waitForRoom } from '../../src/p2p/stream-room.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode, startTestRelay } from '../support/nodes.ts'

const MiB = 1024 * 1024
const TOTAL = 64 * MiB
const CHUNK = randomBytes(256 * 1024)

describe('relayed circuits: back-pressure (loopback)', () => {
  it('a receiver that stops reading stalls the sender within a few MiB; all 64 MiB arrive once it reads, sha256 intact', async () => {
    // a TCP service that does not read until told to, then hashes everything
    let conn: Socket | undefined
    const received = createHash('sha256')
    let got = 0
    let arrived = (): void => {}
    const done = new Promise<void>((r) => {
      arrived = r
    })
    const server = createServer((s) => {
      conn = s
      s.pause()
      s.on('end', () => s.end())
      // a reset during teardown, after every byte arrived, is not a failure; before, the count and hash tell
      s.on('error', () => {})
      s.on('data', (d: Buffer) => {
        received.update(d)
        got += d.length
        if (got === TOTAL) arrived()
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const stops: Array<{ stop(): unknown }> = []
    try {
      const b = await nodeKey()
      const relay = await startTestRelay({ allow: [b.id] })
      stops.push(relay)
      const services = { sink: { target: `/tcp/${port}`, allow: ['*'] } }
      const nodeB = await startNode({ key: b, config: { relays: [relay.addrs[0]!], services } })
      stops.push(nodeB)
      const nodeA = await startNode()
      stops.push(nodeA)
      const stream = await nodeA.openService(nodeB.identity().ticket, 'sink')
      const sent = createHash('sha256')
      let queued = 0
      const writing = (async () => {
        while (queued < TOTAL) {
          await waitForRoom(stream)
          stream.send(CHUNK)
          sent.update(CHUNK)
          queued += CHUNK.length
        }
        await stream.close()
      })()
      await eventually(() => conn !== undefined, { message: 'the service has its connection' })

      // the sender stalls: what has left its stream stays the same over a second
      const left = (): number => queued - stream.writeBufferLength
      let last = -1
      let since = Date.now()
      const stalledAt = await eventually(
        () => {
          const now = left()
          if (now !== last) {
            last = now
            since = Date.now()
            return undefined
          }
          return Date.now() - since >= 1_000 ? now : undefined
        },
        { timeoutMs: 30_000, intervalMs: 100, message: 'the sender stalls while the receiver does not read' },
      )
      assert.ok(stalledAt < 32 * MiB, `the sender got ${stalledAt} bytes out to a receiver that does not read`)

      conn!.resume()
      await Promise.all([writing, done])
      assert.equal(got, TOTAL)
      assert.equal(received.digest('hex'), sent.digest('hex'))
    } finally {
      await Promise.allSettled(stops.reverse().map(async (x) => x.stop()))
      conn?.destroy()
      server.close()
    }
  })
})
