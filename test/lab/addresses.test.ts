/**
 * What a node tells other hosts about itself, in the NAT lab: a `warren relay` on the public segment listening on
 * every interface (so also on 127.0.0.1), node B behind a cone NAT with that relay, node A behind another.
 *
 * - B's ticket and the record B publishes in the DHT hold no loopback or link-local address (neither B's own nor a
 *   circuit address through the relay's loopback address), with discovery.privateAddresses on, as in a LAN or lab;
 * - with discovery.privateAddresses off (the default), a lookup of B by id says that the addresses found were private
 *   and filtered, not that relays are missing.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { decodeTicket } from '../../src/identity/ticket.ts'
import { createLab, type Lab } from '../../src/testing/natlab/index.ts'
import { eventually } from '../support/eventually.ts'
import { labSkip } from '../support/lab.ts'
import { type Proc, spawnProc } from './fixtures/fault-pair.ts'

const MAIN = resolve('src/cli/main.ts')
const NODE = resolve('test/lab/fixtures/addr-node.ts')
const HOST_LOCAL = /\/ip4\/127\.|\/ip6\/::1\/|\/ip4\/169\.254\.|\/ip6\/fe80:/i

function useAddrLab(privateAddresses: boolean) {
  let lab: Lab | undefined
  let dir = ''
  const procs: Proc[] = []
  const state: { lab?: Lab; a?: Proc; b?: Proc; bId?: string; relayAddr?: string } = {}
  before(async () => {
    lab = await createLab({ natA: 'cone', natB: 'cone', publicHosts: ['relay'] })
    dir = await mkdtemp(join(tmpdir(), 'warren-addrs-'))
    const relayArgs = ['--home', join(dir, 'relay'), 'relay', '--json', '--listen', '/ip4/0.0.0.0/tcp/4001']
    if (privateAddresses) relayArgs.push('--private-addresses')
    const relay = spawnProc(lab, 'relay', MAIN, relayArgs, 'relay')
    procs.push(relay)
    const id = (JSON.parse(String((await relay.expect('text', 45_000)).text)) as { id: string }).id
    const relayAddr = `/ip4/${lab.address('relay')}/tcp/4001/p2p/${id}`
    const env = privateAddresses ? { WARREN_LAB_PRIVATE_ADDRS: '1' } : {}
    const b = spawnProc(lab, 'b', NODE, [relayAddr], 'node b', env)
    procs.push(b)
    const a = spawnProc(lab, 'a', NODE, [relayAddr], 'node a', env)
    procs.push(a)
    const [bReady] = await Promise.all([b.expect('ready', 45_000), a.expect('ready', 45_000)])
    Object.assign(state, { lab, a, b, bId: String(bReady.id), relayAddr })
  })
  after(async () => {
    for (const p of procs) p.chan.send({ type: 'cmd', op: 'finish' })
    const { reap } = await import('../../src/testing/natlab/lines.ts')
    await Promise.all(procs.map((p) => reap(p.child, 10_000)))
    await lab?.close()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })
  return state as Required<typeof state>
}

describe('addresses shared with other hosts (relay on every interface, privateAddresses on)', { skip: labSkip }, () => {
  const s = useAddrLab(true)

  it("B's ticket and its published DHT record hold no loopback or link-local address", async () => {
    const published = await eventually(
      async () => {
        const id = await s.b.ask({ op: 'identity' }, 'identity', 10_000)
        const pub = id.publish as { addrs: string[]; lastSuccessAt?: number }
        const circuit = pub.addrs.some((a) => a.includes('/p2p-circuit'))
        return pub.lastSuccessAt !== undefined && circuit ? { id, pub } : undefined
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'B published no record with its relay address' },
    )
    const ticket = decodeTicket(String(published.id.ticket)).addrs.map(String)
    assert.ok(
      ticket.some((a) => a.startsWith(`${s.relayAddr}/p2p-circuit`)),
      `the ticket lacks the relay: ${ticket.join(' ')}`,
    )
    assert.deepEqual(
      ticket.filter((a) => HOST_LOCAL.test(a)),
      [],
      'host-local addresses in the ticket',
    )
    assert.deepEqual(
      published.pub.addrs.filter((a) => HOST_LOCAL.test(a)),
      [],
      'host-local addresses in the record',
    )
    const found = await s.a.ask({ op: 'lookup', id: s.bId }, 'looked', 20_000)
    assert.equal(found.ok, true, String(found.message))
    const addrs = found.addrs as string[]
    assert.ok(addrs.length > 0)
    assert.deepEqual(
      addrs.filter((a) => HOST_LOCAL.test(a)),
      [],
      'host-local addresses found by a lookup',
    )
    const pinged = await s.a.ask({ op: 'ping', node: s.bId }, 'pinged', 30_000)
    assert.equal(pinged.ok, true, JSON.stringify(pinged))
  })
})

describe('a lookup by id when every address is private (privateAddresses off)', { skip: labSkip }, () => {
  const s = useAddrLab(false)

  it('says the addresses were private and filtered, on both ends', async () => {
    const relay = `/ip4/${s.lab.address('relay')}/tcp/4001`
    const pinged = await s.a.ask({ op: 'ping', node: s.bId }, 'pinged', 30_000)
    assert.deepEqual(pinged, {
      type: 'pinged',
      ok: false,
      code: 'ERR_LOOKUP_FAILED',
      message:
        `no address found for node ${s.bId} (cache: nothing cached; config: no address in peers, tickets or --addr; ` +
        'mdns: not heard of on the LAN; dht: the DHT servers in `relays` have only private addresses ' +
        `(${relay}), which this node leaves out while discovery.privateAddresses is false)`,
      hint:
        'The addresses found are private and discovery.privateAddresses is false. On a LAN or lab network set ' +
        '"discovery": { "privateAddresses": true } in config.json on every node and start the relays with ' +
        "--private-addresses; else use the node's ticket (`warren id` there) or --addr.",
    })
    const st = await s.b.ask({ op: 'identity' }, 'identity', 10_000)
    const why = String((st.publish as { lastError?: string }).lastError)
    assert.match(
      why,
      /^every address of this node is private \(\/ip4\/198\.\d+\.\d+\.\d+\/tcp\/4781.*\) and discovery\.privateAddresses is false, so none is published$/,
    )
  })
})
