import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { base36 } from 'multiformats/bases/base36'
import {
  formatNodeId,
  formatNodeIdBase36,
  looksLikeNodeId,
  parseNodeId,
  shortNodeId,
} from '../../src/identity/node-id.ts'

const key = await generateKeyPair('Ed25519')
const id = peerIdFromPrivateKey(key)
const b58 = formatNodeId(id)
const b36 = formatNodeIdBase36(id)

const HINT_FORM = 'Use the id printed by `warren id` on that node, or an alias from `peers`.'

function notNodeId(input: string) {
  return {
    code: 'ERR_BAD_NODE_ID',
    message: `"${input}" is not a node id: it does not start with 12D3KooW (base58) or k51qzi5uqu5 (base36)`,
    hint: HINT_FORM,
  }
}

describe('node ids', () => {
  it('formats both forms with the documented prefixes and lengths', () => {
    assert.match(b58, /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/)
    assert.equal(b58.length, 52)
    assert.match(b36, /^k51qzi5uqu5[a-z0-9]{51}$/)
    assert.equal(b36.length, 62)
    assert.ok(looksLikeNodeId(b58))
    assert.ok(looksLikeNodeId(b36))
    assert.ok(looksLikeNodeId(b36.toUpperCase()))
    assert.ok(!looksLikeNodeId('laptop'))
  })

  it('the base36 form is a valid DNS label', () => {
    assert.match(b36, /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/)
  })

  it('round-trips through both forms', () => {
    assert.ok(parseNodeId(b58).equals(id))
    assert.ok(parseNodeId(b36).equals(id))
    assert.equal(formatNodeId(parseNodeId(b36)), b58)
    assert.equal(formatNodeIdBase36(parseNodeId(b58)), b36)
  })

  it('accepts surrounding whitespace and an upper-case base36 id (DNS is case-insensitive)', () => {
    assert.ok(parseNodeId(`  ${b58}\n`).equals(id))
    assert.ok(parseNodeId(b36.toUpperCase()).equals(id))
  })

  it('round-trips many fresh keys', async () => {
    for (let i = 0; i < 20; i++) {
      const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      assert.ok(parseNodeId(formatNodeId(other)).equals(other))
      assert.ok(parseNodeId(formatNodeIdBase36(other)).equals(other))
    }
  })

  it('shortNodeId shows the last six characters', () => {
    assert.equal(shortNodeId(id), `…${b58.slice(-6)}`)
    assert.equal(shortNodeId(b58), `…${b58.slice(-6)}`)
  })

  it('refuses an empty id', () => {
    const expected = {
      code: 'ERR_BAD_NODE_ID',
      message: 'node id is empty',
      hint: 'Give a node id such as 12D3KooW… (see `warren id` on that node).',
    }
    assert.throws(() => parseNodeId(''), expected)
    assert.throws(() => parseNodeId('   '), expected)
  })

  it('refuses text that is not an id, naming both accepted prefixes', () => {
    assert.throws(() => parseNodeId('laptop'), notNodeId('laptop'))
    assert.throws(() => parseNodeId('hello world'), notNodeId('hello world'))
  })

  it('shortens a very long input in the message', () => {
    const long = 'x'.repeat(100)
    assert.throws(() => parseNodeId(long), notNodeId(`${'x'.repeat(77)}...`))
  })

  it('refuses a truncated base58 id', () => {
    const cut = b58.slice(0, -3)
    assert.throws(() => parseNodeId(cut), {
      code: 'ERR_BAD_NODE_ID',
      message: `"${cut}" is not a valid node id: it has 49 characters, a base58 node id has 52`,
      hint: 'It looks truncated; copy it again from `warren id` on that node.',
    })
  })

  it('refuses a base58 id with a character base58 does not use', () => {
    const bad = `${b58.slice(0, 20)}0${b58.slice(21)}`
    assert.throws(() => parseNodeId(bad), {
      code: 'ERR_BAD_NODE_ID',
      message: `"${bad}" is not a valid node id: "0" at position 21 is not a base58 character (base58 leaves out 0, O, I and l)`,
      hint: 'A character was mistyped; copy the id again from `warren id` on that node.',
    })
  })

  it('refuses a truncated base36 id', () => {
    const cut = b36.slice(0, -2)
    assert.throws(
      () => parseNodeId(cut),
      (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.code, 'ERR_BAD_NODE_ID')
        assert.equal(err.message, `"${cut}" is not a valid node id: it has 60 characters, a base36 node id has 62`)
        assert.equal(err.hint, 'It looks truncated; copy it again from `warren id` on that node.')
        return true
      },
    )
  })

  it('refuses RSA and secp256k1 peer ids (Warren ids are Ed25519)', async () => {
    for (const type of ['secp256k1', 'RSA'] as const) {
      const other = peerIdFromPrivateKey(
        type === 'RSA' ? await generateKeyPair('RSA', 1024) : await generateKeyPair('secp256k1'),
      )
      const text58 = other.toString()
      const text36 = other.toCID().toString(base36)
      assert.throws(() => parseNodeId(text58), notNodeId(text58), `${type} base58`)
      assert.throws(() => parseNodeId(text36), notNodeId(text36), `${type} base36`)
    }
  })
})
