/**
 * LAN discovery: two Warren nodes in network namespaces on one bridge (198.18.0.0/24, the NAT lab's public segment),
 * with no relay and no DHT server, find each other by mDNS and connect directly.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLab, type Lab } from '../../src/testing/natlab/index.ts'
import { type LineChannel, lineChannel, reap } from '../../src/testing/natlab/lines.ts'
import { labSkip } from '../support/lab.ts'

interface Pinged {
  lookup: { source: string; addrs: Array<{ addr: string; source: string }> }
  ping: { id: string; path: { kind: string; addr: string } }
}

describe('mDNS: two nodes on one LAN find each other by id and connect directly', { skip: labSkip }, () => {
  let lab: Lab
  const peers: Record<string, { chan: LineChannel; id: string; child: ReturnType<Lab['spawnNode']> }> = {}

  before(async () => {
    lab = await createLab({ publicHosts: ['lan1', 'lan2'] })
    // a LAN host sends multicast along its default route; the lab's public hosts have none, so give them the
    // multicast route a default route would provide
    for (const host of ['lan1', 'lan2']) await lab.exec(host, 'ip route add 224.0.0.0/4 dev eth0')
    for (const host of ['lan1', 'lan2']) {
      const child = lab.spawnNode(host, 'src/testing/natlab/mdns-peer.ts')
      let stderr = ''
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString()
      })
      const chan = lineChannel(child.stdout!, child.stdin!, host)
      const ready = await chan.next('ready', 20_000).catch((err: Error) => {
        throw new Error(`${host}: ${err.message}; stderr: ${stderr}`)
      })
      peers[host] = { chan, id: String(ready.id), child }
    }
  })
  after(async () => {
    for (const p of Object.values(peers)) {
      p.chan.send({ type: 'cmd', op: 'finish' })
      await reap(p.child, 5_000)
    }
    await lab?.close()
  })

  for (const [from, to] of [
    ['lan2', 'lan1'],
    ['lan1', 'lan2'],
  ] as const) {
    it(`${from} pings ${to} by id alone: found by mDNS, direct path on the LAN`, async () => {
      peers[from]!.chan.send({ type: 'cmd', op: 'ping', id: peers[to]!.id })
      const answer = await peers[from]!.chan.next('result', 30_000)
      assert.equal(answer.ok, true, JSON.stringify(answer))
      const r = answer as unknown as Pinged
      assert.equal(r.lookup.source, 'mdns')
      assert.ok(
        r.lookup.addrs.some((a) => a.addr === `/ip4/${lab.address(to)}/tcp/4781`),
        JSON.stringify(r.lookup.addrs),
      )
      assert.ok(
        r.lookup.addrs.every((a) => !a.addr.startsWith('/ip4/127.')),
        'no loopback address from mDNS',
      )
      assert.equal(r.ping.id, peers[to]!.id)
      assert.equal(r.ping.path.kind, 'direct')
      // the first ping dials the mDNS address; the second reuses that connection (the far end's port is ephemeral)
      assert.match(r.ping.path.addr, new RegExp(`^/ip4/${lab.address(to).replaceAll('.', '\\.')}/tcp/\\d+/p2p/`))
    })
  }
})
