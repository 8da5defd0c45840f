/**
 * The DNS server's limits: the service-address table holds at most dns.maxNames names (a new name past it gets
 * SERVFAIL, names already given addresses keep them, nothing is evicted), and DNS over TCP serves only the
 * daemon's own local user unless proxy.allowOtherUsers (Linux, root to run a client as another user); a TCP client that
 * does not read its answers is not read either.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import dnsPacket, { type Packet } from 'dns-packet'
import { DnsServer } from '../../src/access/dns-server.ts'
import { CAN_CHECK_LOCAL_USERS } from '../../src/access/local-user.ts'
import { AddressTable } from '../../src/access/service-addresses.ts'
import { parseListenAddress } from '../../src/config/listen-address.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { startNodePair as startPair } from '../support/node-pair.ts'
import { rawExchange, rawExchangeAs } from '../support/raw-client.ts'
import { checkStopsReading } from '../support/transfer.ts'

const NOBODY = 65_534

async function queryUdp(port: number, name: string): Promise<Packet> {
  const udp = createSocket('udp4')
  try {
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r))
    const reply = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer for ${name} within 5 s`)), 5_000)
      udp.once('message', (m) => {
        clearTimeout(timer)
        resolve(m)
      })
    })
    udp.send(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name }] }), port, '127.0.0.1')
    return dnsPacket.decode(await reply)
  } finally {
    udp.close()
  }
}

const rcodeOf = (p: Packet) => ((p.flags ?? 0) & 0xf) as number
const aOf = (p: Packet) => (p.answers?.find((a) => a.type === 'A') as { data: string } | undefined)?.data

describe('dns.maxNames bounds the service-address table', () => {
  let peer: PeerId
  let server: DnsServer
  let port: number
  const table = new AddressTable()
  const logs: string[] = []
  before(async () => {
    peer = peerIdFromPrivateKey(await generateNodeKey())
    table.maxNames = 4
    table.addressesOf(peer) // a config peer's node address: always claimed
    server = await DnsServer.start({
      listen: '127.0.0.1:0',
      tld: 'warren',
      ttl: 60,
      addresses: table,
      resolvePeer: (label) => {
        if (label === 'n1') return peer
        throw new Error(`no node ${label}`)
      },
      log: (level, m) => logs.push(`${level} ${m}`),
    })
    port = parseListenAddress(server.listen).port
  })
  after(async () => server?.close())

  it('fills up to the cap, then answers SERVFAIL for new names; known names keep their addresses', async () => {
    const known = new Map<string, string>()
    for (const name of ['n1.warren', 'a.n1.warren', 'b.n1.warren', 'c.n1.warren']) {
      const r = await queryUdp(port, name)
      assert.equal(rcodeOf(r), 0) // NOERROR
      const a = aOf(r)
      assert.ok(a !== undefined, `${name} has an A record`)
      known.set(name, a)
    }
    assert.equal(table.size, 4)
    const full = await queryUdp(port, 'd.n1.warren')
    assert.equal(rcodeOf(full), 2) // SERVFAIL
    assert.deepEqual(full.answers, [])
    assert.equal(table.size, 4)
    assert.equal(rcodeOf(await queryUdp(port, 'e.n1.warren')), 2)
    assert.deepEqual(
      logs.filter((l) => l.startsWith('warn')),
      ['warn dns: 4 names have service addresses (dns.maxNames): new names get SERVFAIL until the daemon restarts'],
    )
    for (const [name, a] of known) {
      const r = await queryUdp(port, name)
      assert.equal(rcodeOf(r), 0)
      assert.equal(aOf(r), a, `${name} keeps its address`)
    }
    assert.deepEqual(table.lookup(known.get('a.n1.warren')!), { node: peer.toString(), service: 'a' })
  })
})

describe('DNS over TCP: a client that reads no answer', () => {
  let server: DnsServer
  let port: number
  before(async () => {
    const peer = peerIdFromPrivateKey(await generateNodeKey())
    server = await DnsServer.start({
      listen: '127.0.0.1:0',
      tld: 'warren',
      ttl: 60,
      addresses: new AddressTable(),
      resolvePeer: () => peer,
    })
    port = parseListenAddress(server.listen).port
  })
  after(async () => server?.close())

  it('is not read either once its answers fill the connection: they do not pile up in the server', async () => {
    const query = dnsPacket.streamEncode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'web.n1.warren' }] })
    const piece = Buffer.concat(Array.from({ length: Math.floor((64 * 1024) / query.length) }, () => query))
    const client = connect({ port, host: '127.0.0.1' })
    await once(client, 'connect')
    client.pause() // reads nothing
    await checkStopsReading(client, piece, 'queries')
    client.destroy()
  })
})

describe('dns.maxNames from config.json', () => {
  let pair: Awaited<ReturnType<typeof startPair>>
  before(async () => {
    pair = await startPair({ dns: true, client: { dns: { maxNames: 16 } } })
  })
  after(async () => pair?.stop())

  it('the peers’ names always fit; the 17th name gets SERVFAIL', async () => {
    const port = parseListenAddress(pair.client.status().dns!.listen).port
    const start = pair.client.addresses.size // the aliases, claimed at start
    assert.ok(start >= 3 && start < 16, `aliases claimed: ${start}`)
    for (let i = start; i < 16; i++) assert.equal(rcodeOf(await queryUdp(port, `s${i}.n1.warren`)), 0)
    assert.equal(rcodeOf(await queryUdp(port, 'one-more.n1.warren')), 2)
    assert.equal(rcodeOf(await queryUdp(port, 'n1.warren')), 0)
    assert.equal(rcodeOf(await queryUdp(port, `s${start}.n1.warren`)), 0)
  })
})

const skip = !CAN_CHECK_LOCAL_USERS
  ? 'not Linux: local users cannot be told apart'
  : process.getuid?.() !== 0
    ? 'needs root to run a client as another user'
    : spawnSync('setpriv', ['--version']).status !== 0
      ? 'needs setpriv (util-linux)'
      : false

describe('DNS over TCP: local users', { skip }, () => {
  let peer: PeerId
  const servers: DnsServer[] = []
  const logs: string[] = []
  const start = async (allowOtherUsers: boolean) => {
    const s = await DnsServer.start({
      listen: '127.0.0.1:0',
      tld: 'warren',
      ttl: 60,
      addresses: new AddressTable(),
      allowOtherUsers,
      resolvePeer: () => peer,
      log: (level, m) => {
        if (level === 'warn') logs.push(m)
      },
    })
    servers.push(s)
    return parseListenAddress(s.listen).port
  }
  before(async () => {
    peer = peerIdFromPrivateKey(await generateNodeKey())
  })
  after(async () => Promise.all(servers.map((s) => s.close())))
  const query = dnsPacket.streamEncode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'web.n1.warren' }] })

  it('another user is refused by default; the own user is answered', async () => {
    const port = await start(false)
    const own = await rawExchange('127.0.0.1', port, query, true)
    assert.equal(own.ending, 'end')
    assert.ok(own.bytes > 2, 'an answer came')
    const other = await rawExchangeAs(NOBODY, '127.0.0.1', port, query, true)
    assert.equal(other.bytes, 0)
    assert.ok(other.ending === 'end' || other.ending === 'error:ECONNRESET', other.ending)
    assert.ok(
      logs.some((l) => l.startsWith(`the DNS server (TCP) refused a connection from local user uid ${NOBODY}`)),
      logs.join('\n'),
    )
  })

  it('with proxy.allowOtherUsers another user gets the same answer', async () => {
    const port = await start(true)
    const own = await rawExchange('127.0.0.1', port, query, true)
    const other = await rawExchangeAs(NOBODY, '127.0.0.1', port, query, true)
    assert.equal(other.ending, 'end')
    assert.ok(other.bytes > 2)
    assert.equal(other.allSha256, own.allSha256)
  })
})
