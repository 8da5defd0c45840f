/**
 * TCP_INFO as the direct-path watch reads it (tcp-info.ts), on a real loopback connection: after an echo every byte is
 * acknowledged and no retransmission time-out fired; a destroyed socket has no descriptor left to ask.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { tcpInfo } from '../../src/p2p/tcp-info.ts'
import { eventually } from '../support/eventually.ts'

describe('tcpInfo (Linux TCP_INFO)', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  it('reads an idle, fully acknowledged connection, and nothing from a destroyed socket', async () => {
    const server = createServer((s) => s.pipe(s))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    const client: Socket = connect(port, '127.0.0.1')
    try {
      await once(client, 'connect')
      client.write(Buffer.alloc(64 * 1024, 7))
      let echoed = 0
      client.on('data', (d: Buffer) => {
        echoed += d.length
      })
      await eventually('the echo', () => echoed === 64 * 1024, 5_000)
      const info = await eventually('TCP_INFO readable (koffi loaded)', () => tcpInfo(client), 5_000)
      assert.equal(info.unacked, 0)
      assert.equal(info.retransmits, 0)
      assert.ok(info.rttMs >= 0 && info.rttMs < 1_000, `rtt ${info.rttMs} ms`)
      assert.ok(info.rtoMs >= 200, `rto ${info.rtoMs} ms`)
      assert.ok(info.lastAckMs < 60_000, `last ack ${info.lastAckMs} ms ago`)
      client.destroy()
      assert.equal(tcpInfo(client), undefined)
    } finally {
      client.destroy()
      server.close()
    }
  })
})
