/** netcheck on loopback: UDP reachability, the mapping and round trips per STUN server. */
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { describe, it } from 'node:test'
import { fromDgram } from '../../src/p2p/udx/packet-socket.ts'
import { startStunResponder } from '../../src/stun/codec.ts'
import { netcheck } from '../../src/traversal/net-report/netcheck.ts'

function udp(): Promise<Socket> {
  const s = createSocket('udp4')
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)))
}

describe('netcheck on loopback', () => {
  it('reports UDP, the mapping and RTT per server; one server cannot tell the NAT kind', async () => {
    const stun = await startStunResponder({ host: '127.0.0.1', port: 0 })
    const silent = await udp()
    const s = await udp()
    try {
      const dead = { host: '127.0.0.1', port: silent.address().port }
      const r = await netcheck(fromDgram(s), [stun.address, dead], { timeoutMs: 300 })
      assert.equal(r.udp, true)
      assert.deepEqual(r.servers[0]!.mapped, { host: '127.0.0.1', port: s.address().port })
      assert.ok(r.servers[0]!.rttMs! >= 0)
      assert.equal(r.servers[1]!.error, `no STUN answer from 127.0.0.1:${dead.port} within 300 ms`)
      assert.equal(r.mappingVariesByDestination, undefined)
      assert.equal(r.noNat, true)
      const two = await netcheck(fromDgram(s), [stun.address, stun.address])
      assert.equal(two.mappingVariesByDestination, false)
      assert.equal(two.nat, 'easy')
    } finally {
      s.close()
      silent.close()
      await stun.close()
    }
  })
})
