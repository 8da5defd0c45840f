/**
 * The .warren DNS server over real UDP and TCP sockets (packets built and read with dns-packet), and SOCKS5
 * connections by the addresses it hands out.
 */
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import dnsPacket, { type Packet } from 'dns-packet'
import { SocksReply } from '../../src/http/error-replies.ts'
import { socks5Connect } from '../support/access-clients.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'

const RCODE = { NOERROR: 'NOERROR', NXDOMAIN: 'NXDOMAIN', REFUSED: 'REFUSED' }

type Answer = Packet & { rcode: string; flag_aa: boolean }

function split(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':')
  return { host: listen.slice(0, i), port: Number(listen.slice(i + 1)) }
}

let nextId = 1

async function udpQuery(listen: string, name: string, type: 'A' | 'AAAA' | 'TXT'): Promise<Answer> {
  const { host, port } = split(listen)
  const sock = createSocket('udp4')
  try {
    const id = nextId++
    sock.send(
      dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] }),
      port,
      host,
    )
    const timer = setTimeout(() => sock.close(), 5_000)
    const [msg] = (await once(sock, 'message')) as [Buffer]
    clearTimeout(timer)
    const res = dnsPacket.decode(msg) as unknown as Answer
    assert.equal(res.id, id)
    return res
  } finally {
    sock.close()
  }
}

async function tcpQuery(listen: string, name: string, type: 'A' | 'AAAA'): Promise<Answer> {
  const s = connect(split(listen))
  await once(s, 'connect')
  s.write(dnsPacket.streamEncode({ type: 'query', id: 7, questions: [{ type, name }] }))
  let buf = Buffer.alloc(0)
  while (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0))
    buf = Buffer.concat([buf, (await once(s, 'data'))[0] as Buffer])
  s.destroy()
  return dnsPacket.streamDecode(buf) as unknown as Answer
}

describe('.warren DNS server', () => {
  let p: Pair
  let dns: string
  before(async () => {
    p = await startPair({ dns: true })
    dns = p.client.status().dns!.listen
  })
  after(() => p.stop())

  it('answers A and AAAA for <service>.<alias>.warren with the service addresses, over UDP and TCP', async () => {
    const want = p.client.addresses.addressesOf(p.host.peerId, 'web')
    const a = await udpQuery(dns, 'web.n1.warren', 'A')
    assert.equal(a.rcode, RCODE.NOERROR)
    assert.equal(a.flag_aa, true)
    assert.deepEqual(
      a.answers?.map((x) => [x.type, x.name, (x as { data: string }).data, (x as { ttl: number }).ttl]),
      [['A', 'web.n1.warren', want.ipv4, 60]],
    )
    const aaaa = await tcpQuery(dns, 'web.n1.warren', 'AAAA')
    assert.equal(aaaa.rcode, RCODE.NOERROR)
    assert.deepEqual(
      aaaa.answers?.map((x) => (x as { data: string }).data),
      [want.ipv6],
    )
    const t = await tcpQuery(dns, 'web.n1.warren', 'A')
    assert.deepEqual(
      t.answers?.map((x) => (x as { data: string }).data),
      [want.ipv4],
    )
  })

  it('the base36 id names the same node; <node>.warren has its own address', async () => {
    const byAlias = await udpQuery(dns, 'web.n1.warren', 'A')
    const byId = await udpQuery(dns, `web.${p.hostBase36}.warren`, 'A')
    assert.deepEqual(
      byId.answers?.map((x) => (x as { data: string }).data),
      byAlias.answers?.map((x) => (x as { data: string }).data),
    )
    const node = await udpQuery(dns, 'n1.warren', 'A')
    assert.deepEqual(
      node.answers?.map((x) => (x as { data: string }).data),
      [p.client.addresses.addressesOf(p.host.peerId).ipv4],
    )
  })

  it('NXDOMAIN with the SOA for unknown nodes and malformed names; NOERROR/no data for other types', async () => {
    for (const name of ['web.nobody.warren', 'a.b.c.warren', 'we_b.n1.warren']) {
      const r = await udpQuery(dns, name, 'A')
      assert.equal(r.rcode, RCODE.NXDOMAIN, name)
      assert.deepEqual(r.answers, [])
      assert.equal(r.authorities?.[0]?.type, 'SOA')
    }
    const txt = await udpQuery(dns, 'web.n1.warren', 'TXT')
    assert.equal(txt.rcode, RCODE.NOERROR)
    assert.deepEqual(txt.answers, [])
  })

  it('REFUSED outside .warren: it is not a recursive resolver', async () => {
    const r = await udpQuery(dns, 'example.com', 'A')
    assert.equal(r.rcode, RCODE.REFUSED)
    assert.deepEqual(r.answers, [])
    const t = await tcpQuery(dns, 'warren.example.com', 'AAAA')
    assert.equal(t.rcode, RCODE.REFUSED)
  })

  it('SOCKS5 by the IPv4 and IPv6 service addresses it handed out reaches the service', async () => {
    const a = (await udpQuery(dns, 'raw.n1.warren', 'A')).answers![0] as { data: string }
    const aaaa = (await udpQuery(dns, 'raw.n1.warren', 'AAAA')).answers![0] as { data: string }
    for (const [host, atyp] of [
      [a.data, 'ipv4'],
      [aaaa.data, 'ipv6'],
    ] as const) {
      const { reply, socket } = await socks5Connect(p.access, { host, port: 5000, atyp })
      assert.equal(reply, 0, `${host}`)
      socket.write('by address\n')
      let text = ''
      for await (const c of socket) text += c
      assert.equal(text, 'hello from raw tcp\necho: by address\n')
    }
  })

  it("SOCKS5 to a node's own address (no service) is refused", async () => {
    const a = (await udpQuery(dns, 'n1.warren', 'A')).answers![0] as { data: string }
    const { reply, socket } = await socks5Connect(p.access, { host: a.data, port: 80, atyp: 'ipv4' })
    socket.destroy()
    assert.equal(reply, SocksReply.HOST_UNREACHABLE)
  })
})
