import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { base32 } from 'multiformats/bases/base32'
import { decodeTicket, encodeTicket, looksLikeTicket, TICKET_PREFIX } from '../../src/identity/ticket.ts'

const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
const addrs = [
  multiaddr('/ip4/198.51.100.7/tcp/4781'),
  multiaddr('/ip6/2001:db8::7/tcp/4781'),
  multiaddr('/dns4/relay.example.net/tcp/443/wss'),
  multiaddr('/ip4/203.0.113.9/tcp/4001/p2p/12D3KooWBSxVvbHbNRj66jKoJevZ4dbPEcmkzSoK4w6iSuoLp2Rr/p2p-circuit'),
]
const ticket = encodeTicket({ id, addrs })
const RECOPY = 'Copy the whole ticket again from `warren id` on that node.'

/** A ticket built by hand: `body` gets a correct checksum, so only the field under test is wrong. */
function rawTicket(body: Uint8Array): string {
  const sum = createHash('sha256').update(body).digest().subarray(0, 4)
  return TICKET_PREFIX + base32.baseEncode(Buffer.concat([body, sum]))
}

function idBody(version: number, count: number, extra: Uint8Array = new Uint8Array()): Uint8Array {
  const idBytes = id.toMultihash().bytes
  return Buffer.concat([Uint8Array.of(version, idBytes.length), idBytes, Uint8Array.of(count), extra])
}

describe('tickets', () => {
  it('round-trips the id and several addresses, in order', () => {
    assert.ok(ticket.startsWith('warren'))
    assert.match(ticket, /^warren[a-z2-7]+$/)
    const back = decodeTicket(ticket)
    assert.ok(back.id.equals(id))
    assert.deepEqual(
      back.addrs.map((a) => a.toString()),
      addrs.map((a) => a.toString()),
    )
  })

  it('round-trips a ticket with no addresses', () => {
    const back = decodeTicket(encodeTicket({ id, addrs: [] }))
    assert.ok(back.id.equals(id))
    assert.deepEqual(back.addrs, [])
  })

  it('is accepted in upper case and with surrounding whitespace', () => {
    assert.ok(decodeTicket(`  ${ticket.toUpperCase()}\n`).id.equals(id))
    assert.ok(looksLikeTicket(` ${ticket.toUpperCase()}`))
    assert.ok(!looksLikeTicket(id.toString()))
  })

  it('rejects text without the prefix', () => {
    const expected = { code: 'ERR_BAD_TICKET', message: 'not a ticket: it must start with "warren"', hint: RECOPY }
    assert.throws(() => decodeTicket(''), expected)
    assert.throws(() => decodeTicket('hello'), expected)
    assert.throws(() => decodeTicket(ticket.slice(1)), expected)
  })

  it('rejects an empty ticket body', () => {
    assert.throws(() => decodeTicket('warren'), {
      code: 'ERR_BAD_TICKET',
      message: 'ticket is too short (0 bytes): it looks truncated',
      hint: RECOPY,
    })
  })

  it('rejects garbage characters, naming the first one and its position', () => {
    assert.throws(() => decodeTicket('warren!!!'), {
      code: 'ERR_BAD_TICKET',
      message: 'ticket contains "!" at position 6, which base32 (a-z, 2-7) does not use',
      hint: `A character was mistyped. ${RECOPY}`,
    })
    const pos = 20
    const typo = `${ticket.slice(0, pos)}1${ticket.slice(pos + 1)}`
    assert.throws(() => decodeTicket(typo), {
      code: 'ERR_BAD_TICKET',
      message: `ticket contains "1" at position ${pos}, which base32 (a-z, 2-7) does not use`,
      hint: `A character was mistyped. ${RECOPY}`,
    })
  })

  it('rejects a truncated ticket, whatever length is left', () => {
    let seen = 0
    for (let cut = 1; cut < ticket.length - TICKET_PREFIX.length; cut++) {
      const short = ticket.slice(0, ticket.length - cut)
      assert.throws(
        () => decodeTicket(short),
        (err: Error & { code?: string; hint?: string }) => {
          assert.equal(err.code, 'ERR_BAD_TICKET')
          assert.equal(err.hint, RECOPY)
          assert.match(
            err.message,
            /^(ticket has an impossible length: it looks truncated|ticket is too short \(\d+ bytes\): it looks truncated|ticket checksum does not match: it was truncated or mistyped)$/,
          )
          return true
        },
        `cut ${cut}`,
      )
      seen++
    }
    assert.ok(seen > 100)
  })

  it('gives the exact message for the common truncations', () => {
    // base32 with 3 characters left over cannot be a whole number of bytes
    const impossible = ticket.slice(0, TICKET_PREFIX.length + 8 * 10 + 3)
    assert.throws(() => decodeTicket(impossible), {
      code: 'ERR_BAD_TICKET',
      message: 'ticket has an impossible length: it looks truncated',
      hint: RECOPY,
    })
    const whole = ticket.slice(0, TICKET_PREFIX.length + 8 * 10)
    assert.throws(() => decodeTicket(whole), {
      code: 'ERR_BAD_TICKET',
      message: 'ticket checksum does not match: it was truncated or mistyped',
      hint: RECOPY,
    })
  })

  it('rejects every single mistyped character (checksum)', () => {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
    let tried = 0
    // every position but the last, whose low bits are padding (see the next test)
    for (let i = TICKET_PREFIX.length; i < ticket.length - 1; i++) {
      const c = ticket[i]!
      const other = alphabet[(alphabet.indexOf(c) + 1 + (i % 31)) % 32]!
      const typo = ticket.slice(0, i) + other + ticket.slice(i + 1)
      assert.throws(() => decodeTicket(typo), {
        code: 'ERR_BAD_TICKET',
        message: 'ticket checksum does not match: it was truncated or mistyped',
        hint: RECOPY,
      })
      tried++
    }
    assert.ok(tried > 100)
  })

  it('rejects a mistyped last character', () => {
    const last = ticket.at(-1)!
    for (const other of 'abcdefghijklmnopqrstuvwxyz234567'.replace(last, '')) {
      assert.throws(
        () => decodeTicket(ticket.slice(0, -1) + other),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'ERR_BAD_TICKET')
          assert.match(
            err.message,
            /^(ticket checksum does not match: it was truncated or mistyped|ticket has an impossible length: it looks truncated)$/,
          )
          return true
        },
      )
    }
  })

  it('rejects an unknown version, saying to upgrade', () => {
    const v2 = rawTicket(idBody(2, 0))
    assert.throws(() => decodeTicket(v2), {
      code: 'ERR_BAD_TICKET',
      message: 'ticket version 2 is not supported (this Warren reads version 1)',
      hint: 'Upgrade Warren.',
    })
  })

  it('rejects a well-checksummed but malformed body', () => {
    assert.throws(() => decodeTicket(rawTicket(idBody(1, 0, Uint8Array.of(9)))), {
      code: 'ERR_BAD_TICKET',
      message: 'ticket is malformed: trailing bytes',
      hint: RECOPY,
    })
    assert.throws(() => decodeTicket(rawTicket(idBody(1, 1, Uint8Array.of(100)))), {
      code: 'ERR_BAD_TICKET',
      message: 'ticket is malformed: length runs past the end',
      hint: RECOPY,
    })
  })
})
