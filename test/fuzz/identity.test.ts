/**
 * Fuzzing node ids and tickets: every encoded value decodes to itself, and any string (random, mutated, or a
 * well-formed ticket body with a valid checksum but random contents) either parses or throws ERR_BAD_NODE_ID /
 * ERR_BAD_TICKET, never another exception.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { before, describe, it } from 'node:test'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import fc from 'fast-check'
import { base32 } from 'multiformats/bases/base32'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { formatNodeId, formatNodeIdBase36, parseNodeId } from '../../src/identity/node-id.ts'
import { decodeTicket, encodeTicket, TICKET_PREFIX } from '../../src/identity/ticket.ts'
import { fuzz, nastyString, parsesOrRefuses } from './fuzz-kit.ts'

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz'

const octet = fc.integer({ min: 0, max: 255 })
const port = fc.integer({ min: 0, max: 65535 })
const ip4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'))
const ip6 = fc.ipV6().filter((a) => !a.includes('.'))
const dnsName = fc.domain()
/** Multiaddrs as tickets carry them: direct TCP/UDP/QUIC/WS addresses and relay circuits. */
const addr = fc
  .oneof(
    fc.tuple(ip4, port).map(([h, p]) => `/ip4/${h}/tcp/${p}`),
    fc.tuple(ip6, port).map(([h, p]) => `/ip6/${h}/udp/${p}/quic-v1`),
    fc.tuple(dnsName, port).map(([h, p]) => `/dns4/${h}/tcp/${p}/ws`),
    fc.tuple(ip4, port).map(([h, p]) => `/ip4/${h}/udp/${p}`),
  )
  .map((s) => multiaddr(s))

describe('fuzz: node ids and tickets', () => {
  let ids: PeerId[]
  before(async () => {
    ids = await Promise.all([1, 2, 3].map(async () => peerIdFromPrivateKey(await generateNodeKey())))
  })
  const anyId = () => fc.integer({ min: 0, max: 2 }).map((i) => ids[i]!)

  it('node ids: both forms parse back to the same id', () => {
    fuzz(
      'node-id round trip',
      fc.tuple(anyId(), fc.boolean(), fc.constantFrom('', ' ', '\n')),
      ([id, b36, pad]) => {
        const text = b36 ? formatNodeIdBase36(id) : formatNodeId(id)
        assert.ok(parseNodeId(pad + (b36 ? text.toUpperCase() : text) + pad).equals(id))
      },
      { runs: 100 },
    )
  })

  it('node ids: any string parses to an Ed25519 id or is ERR_BAD_NODE_ID', () => {
    const near = (alphabet: string, prefix: string, len: number) =>
      fc
        .array(fc.constantFrom(...alphabet), { minLength: len - 4 - prefix.length, maxLength: len + 2 - prefix.length })
        .map((cs) => prefix + cs.join(''))
    const mutated = fc
      .tuple(anyId(), fc.boolean(), fc.nat(), fc.string({ minLength: 1, maxLength: 2 }))
      .map(([id, b36, at, ch]) => {
        const s = b36 ? formatNodeIdBase36(id) : formatNodeId(id)
        const i = at % s.length
        return s.slice(0, i) + ch + s.slice(i + 1)
      })
    fuzz(
      'node-id parse',
      fc.oneof(
        fc.string(),
        nastyString(['12D3KooW', 'k51qzi5uqu5', 'Qm', '1', 'z']),
        near(BASE58, '12D3KooW', 52),
        near(BASE36, 'k51qzi5uqu5', 62),
        mutated,
      ),
      (s) =>
        parsesOrRefuses(
          () => parseNodeId(s),
          { code: 'ERR_BAD_NODE_ID' },
          (id) => assert.equal(id.type, 'Ed25519'),
        ),
      { runs: 300 },
    )
  })

  it('tickets: encode then decode gives the id and addresses back', () => {
    fuzz(
      'ticket round trip',
      fc.tuple(anyId(), fc.array(addr, { maxLength: 8 })),
      ([id, addrs]) => {
        const t = decodeTicket(encodeTicket({ id, addrs }))
        assert.ok(t.id.equals(id))
        assert.deepEqual(
          t.addrs.map((a) => a.toString()),
          addrs.map((a) => a.toString()),
        )
      },
      { runs: 100 },
    )
  })

  it('tickets: any text decodes or is ERR_BAD_TICKET (also bodies with a valid checksum)', () => {
    /** A ticket whose body is arbitrary but carries a correct checksum, so decoding reaches the structure. */
    const checksummed = fc
      .tuple(
        fc.constantFrom(1, 1, 1, 2, 0),
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }),
          // a real id and address section, then random mutation of a few bytes
          fc
            .tuple(anyId(), fc.array(addr, { maxLength: 3 }), fc.array(fc.tuple(fc.nat(), octet), { maxLength: 3 }))
            .map(([id, addrs, edits]) => {
              const raw = Buffer.from(base32.baseDecode(encodeTicket({ id, addrs }).slice(TICKET_PREFIX.length)))
              const body = raw.subarray(1, raw.length - 4)
              for (const [at, v] of edits) if (body.length > 0) body[at % body.length] = v
              return new Uint8Array(body)
            }),
        ),
      )
      .map(([version, rest]) => {
        const body = Buffer.concat([Buffer.of(version), rest])
        const sum = createHash('sha256').update(body).digest().subarray(0, 4)
        return TICKET_PREFIX + base32.baseEncode(Buffer.concat([body, sum]))
      })
    const truncated = fc.tuple(anyId(), fc.array(addr, { maxLength: 3 }), fc.nat()).map(([id, addrs, cut]) => {
      const t = encodeTicket({ id, addrs })
      return t.slice(0, cut % t.length)
    })
    fuzz(
      'ticket decode',
      fc.oneof(
        fc.string(),
        nastyString(['warren', 'WARREN', 'aaaa', '2345', '7']),
        checksummed,
        truncated,
        fc
          .array(fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz234567'), { maxLength: 200 })
          .map((c) => `warren${c.join('')}`),
      ),
      (s) =>
        parsesOrRefuses(
          () => decodeTicket(s),
          { code: 'ERR_BAD_TICKET' },
          (t) => {
            assert.equal(t.id.type, 'Ed25519')
            assert.ok(t.addrs.length <= 64)
          },
        ),
      { runs: 300 },
    )
  })
})
