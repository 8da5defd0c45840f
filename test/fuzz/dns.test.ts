/**
 * Fuzzing the .warren DNS server and dns-packet, which parses untrusted packets: any bytes either decode or throw
 * an Error (never anything else, never a hang); every query the server decodes gets an answer that encodes and
 * decodes again; and a real server on UDP and TCP, fed malformed and mutated packets, keeps answering.
 */
import assert from 'node:assert/strict'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import dnsPacket, { type Packet } from 'dns-packet'
import fc from 'fast-check'
import { answerQuery, DnsServer } from '../../src/access/dns-server.ts'
import { AddressTable } from '../../src/access/service-addresses.ts'
import { parseListenAddress } from '../../src/config/listen-address.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import { fuzz, fuzzAsync } from './fuzz-kit.ts'

const u16 = fc.integer({ min: 0, max: 0xffff })
const names = (b36: string) =>
  fc.oneof(
    fc.constantFrom('web.n1.warren', 'n1.warren', 'warren', `web.${b36}.warren`, 'example.com', 'a.b.c.n1.warren'),
    fc
      .array(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 1, maxLength: 4 })
      .map((l) => `${l.join('.')}.warren`),
  )
const qtype = fc.constantFrom('A', 'AAAA', 'ANY', 'TXT', 'SOA', 'MX', 'CNAME', 'SRV', 'PTR', 'NS', 'OPT', 'CAA')

/** Well-formed packets of every kind dns-packet can build (queries and responses, records in every section). */
function packets(b36: string): fc.Arbitrary<Buffer> {
  const rr = fc.oneof(
    fc.record({ type: fc.constant('A' as const), name: names(b36), ttl: u16, data: fc.ipV4() }),
    fc.record({ type: fc.constant('AAAA' as const), name: names(b36), ttl: u16, data: fc.constant('fd00::1') }),
    fc.record({ type: fc.constant('TXT' as const), name: names(b36), ttl: u16, data: fc.string({ maxLength: 30 }) }),
    fc.record({ type: fc.constant('CNAME' as const), name: names(b36), ttl: u16, data: names(b36) }),
  )
  return fc
    .record({
      type: fc.constantFrom('query' as const, 'response' as const),
      id: u16,
      flags: u16,
      questions: fc.array(fc.record({ type: qtype, name: names(b36) }), { maxLength: 3 }),
      answers: fc.array(rr, { maxLength: 2 }),
      additionals: fc.array(rr, { maxLength: 2 }),
    })
    .map((p) => {
      try {
        return dnsPacket.encode(p as unknown as Packet)
      } catch {
        return Buffer.alloc(0) // a combination dns-packet refuses to build; fuzzed as an empty datagram
      }
    })
}

/** Malformed datagrams: random bytes, a valid header with random rest, and mutated well-formed packets. */
function datagrams(b36: string): fc.Arbitrary<Buffer> {
  const header = fc.tuple(u16, u16, fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 4, maxLength: 4 }))
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.tuple(header, fc.uint8Array({ maxLength: 200 })).map(([[id, flags, counts], rest]) => {
      const h = Buffer.alloc(12)
      h.writeUInt16BE(id, 0)
      h.writeUInt16BE(flags & 0x7fff, 2)
      for (const [i, c] of counts.entries()) h.writeUInt16BE(c, 4 + i * 2)
      return Buffer.concat([h, rest])
    }),
    fc
      .tuple(
        packets(b36),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      )
      .map(([p, edits]) => {
        const b = Buffer.from(p)
        for (const [at, v] of edits) if (b.length > 0) b[at % b.length] = v
        return b
      }),
    fc.tuple(packets(b36), fc.nat()).map(([p, cut]) => p.subarray(0, cut % (p.length + 1))),
    packets(b36),
  )
}

describe('fuzz: DNS', () => {
  let peer: PeerId
  let b36: string
  let server: DnsServer
  let udp: UdpSocket
  let host: string
  let port: number
  const logged: string[] = []
  const opts = () => ({
    tld: 'warren',
    ttl: 60,
    addresses: new AddressTable(),
    resolvePeer: (label: string): PeerId => {
      if (label === 'n1' || label === b36) return peer
      throw new Error(`no node ${label}`)
    },
  })

  before(async () => {
    peer = peerIdFromPrivateKey(await generateNodeKey())
    b36 = formatNodeIdBase36(peer)
    server = await DnsServer.start({ ...opts(), listen: '127.0.0.1:0', log: (l, m) => logged.push(`${l} ${m}`) })
    ;({ host, port } = parseListenAddress(server.listen))
    udp = createSocket('udp4')
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r))
  })
  after(async () => {
    udp?.close()
    await server?.close()
  })

  it('dns-packet: any bytes decode or throw an Error; decoded queries are answered with packets that round trip', () => {
    const o = opts()
    fuzz(
      'dns-packet decode + answer',
      datagrams('k51qzi5uqu5dummy'),
      (b) => {
        let q: Packet
        try {
          q = dnsPacket.decode(b)
        } catch (err) {
          assert.ok(err instanceof Error, `dns-packet threw a non-Error: ${String(err)}`)
          return
        }
        if (q.type !== 'query') return
        const res = answerQuery(q, o)
        const wire = dnsPacket.encode(res)
        const back = dnsPacket.decode(wire)
        assert.equal(back.id, q.id ?? 0)
        assert.equal(back.type, 'response')
      },
      { runs: 500 },
    )
  })

  /** Sends `b` over UDP, then a probe query; resolves with every answer that came before the probe's. */
  function sendThenProbe(b: Buffer, probeId: number): Promise<Buffer[]> {
    return new Promise((resolve) => {
      const got: Buffer[] = []
      const onMessage = (m: Buffer): void => {
        if (
          m.length >= 2 &&
          m.readUInt16BE(0) === probeId &&
          dnsPacket.decode(m).questions?.[0]?.name === 'probe.n1.warren'
        ) {
          udp.off('message', onMessage)
          resolve(got)
        } else got.push(m)
      }
      udp.on('message', onMessage)
      if (b.length > 0) udp.send(b, port, host)
      udp.send(
        dnsPacket.encode({ type: 'query', id: probeId, questions: [{ type: 'A', name: 'probe.n1.warren' }] }),
        port,
        host,
      )
    })
  }

  it('a real server on UDP answers every decodable query and keeps answering', async () => {
    let probe = 0
    await fuzzAsync(
      'dns server udp',
      datagrams(b36),
      async (b) => {
        probe = (probe + 1) & 0xffff
        const answers = await sendThenProbe(b, probe)
        for (const a of answers) {
          const p = dnsPacket.decode(a)
          assert.equal(p.type, 'response')
        }
      },
      { runs: 150, kind: 'socket' },
    )
  })

  it('a question name that is not ASCII gets FORMERR without its question (it would come back longer)', async () => {
    const label = Buffer.from([0x80, 0xff, ...Buffer.from('web')])
    const q = Buffer.concat([
      Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, label.length]),
      label,
      Buffer.from([2, ...Buffer.from('n1'), 6, ...Buffer.from('warren'), 0, 0, 1, 0, 1]),
    ])
    const answers = await sendThenProbe(q, 999)
    assert.equal(answers.length, 1)
    const res = dnsPacket.decode(answers[0]!)
    assert.equal(res.id, 0x1234)
    assert.equal((res as unknown as { rcode: string }).rcode, 'FORMERR')
    assert.deepEqual(res.questions, [])
  })

  it('a real server on TCP answers or closes for any byte stream, and keeps serving', async () => {
    const framed = fc.oneof(
      datagrams(b36).map((d) => {
        const len = Buffer.alloc(2)
        len.writeUInt16BE(d.length)
        return Buffer.concat([len, d])
      }),
      fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)),
    )
    await fuzzAsync(
      'dns server tcp',
      fc.array(framed, { minLength: 1, maxLength: 3 }),
      async (chunks) => {
        const out = await new Promise<Buffer>((resolve, reject) => {
          const s = connect({ host, port })
          const got: Buffer[] = []
          s.on('data', (d: Buffer) => got.push(d))
          s.on('error', reject)
          s.on('close', () => resolve(Buffer.concat(got)))
          for (const c of chunks) s.write(c)
          s.end()
        })
        let off = 0
        while (off + 2 <= out.length) {
          const len = out.readUInt16BE(off)
          assert.equal(dnsPacket.decode(out.subarray(off + 2, off + 2 + len)).type, 'response')
          off += 2 + len
        }
        assert.equal(off, out.length, 'answers are whole frames')
      },
      { runs: 40, kind: 'socket' },
    )
    const alive = await sendThenProbe(Buffer.alloc(0), 4242)
    assert.deepEqual(alive, [])
    assert.deepEqual(
      logged.filter((l) => !l.startsWith('info DNS server')),
      [],
      'nothing went wrong enough to log',
    )
  })
})
