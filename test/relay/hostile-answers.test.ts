/**
 * What a node takes from a relay's answers on Warren's own relay protocols: every field typed, so a relay that lies
 * (wrong types, values nested deep enough to exhaust the stack when written out) is a protocol error naming the
 * field, never a value the node goes on with. A real node asks a real libp2p node that answers by hand.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { readAll } from '../../src/p2p/read-all.ts'
import { declareAdmits, RELAY_ADMITS_PROTOCOL } from '../../src/relay/admits.ts'
import { queryRelayInfo, RELAY_INFO_PROTOCOL } from '../../src/relay/info.ts'

const deep = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth)

describe("a relay's answers on /warren/relay/1.0.0 and /warren/relay/admits/1.0.0, checked field by field", () => {
  let relay: WarrenLibp2p
  let node: WarrenLibp2p
  let answer = ''

  before(async () => {
    relay = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    node = await createNode({ privateKey: await generateNodeKey(), listen: [] })
    const reply = async (stream: Parameters<Parameters<WarrenLibp2p['handle']>[1]>[0]): Promise<void> => {
      await readAll(stream, AbortSignal.timeout(5_000), 64 * 1024)
      stream.send(new TextEncoder().encode(answer))
      await stream.close()
    }
    await relay.handle(RELAY_INFO_PROTOCOL, reply)
    await relay.handle(RELAY_ADMITS_PROTOCOL, reply)
    await node.dial(relay.getMultiaddrs()[0]!)
  })
  after(async () => {
    await Promise.all([relay.stop(), node.stop()])
  })

  const full = {
    relay: 'r',
    node: 'n',
    allowed: true,
    private: false,
    limits: null,
    reservation: null,
    wouldRefuse: null,
    refusal: null,
    stun: { port: 3478 },
  }

  it('a whole answer is taken as it is; fields an older relay leaves out get their defaults', async () => {
    answer = JSON.stringify({ ...full, admission: 'list', later: 'a field of a newer relay' })
    assert.deepEqual(await queryRelayInfo(node, relay.peerId), { ...full, admission: 'list' })
    answer = '{"allowed":false}'
    assert.deepEqual(await queryRelayInfo(node, relay.peerId), {
      relay: '',
      node: '',
      allowed: false,
      private: false,
      limits: null,
      wouldRefuse: null,
      refusal: null,
      stun: null,
    })
  })

  for (const [what, body, why] of [
    ['not JSON', '{nope', 'not JSON'],
    ['not an object', '[1]', 'not an object'],
    ['no "allowed"', '{}', '"allowed": Invalid input: expected boolean, received undefined'],
    [
      'a reason nested 8,000 deep',
      JSON.stringify({ ...full, wouldRefuse: 'x' }).replace('"x"', deep(8_000)),
      '"wouldRefuse": Invalid input: expected string, received array',
    ],
    [
      'a STUN port that is a string',
      JSON.stringify({ ...full, stun: { port: '3478' } }),
      '"stun.port": Invalid input: expected number, received string',
    ],
    [
      'a refusal of an unknown kind',
      JSON.stringify({ ...full, refusal: { kind: 'other', reason: 'r', at: 1 } }),
      '"refusal.kind": Invalid option: expected one of "reservation"|"circuit"',
    ],
  ] as const) {
    it(`info: ${what} is ERR_PROTOCOL naming the field`, async () => {
      answer = body
      await assert.rejects(queryRelayInfo(node, relay.peerId), (err) => {
        assert.ok(isWarrenError(err, 'ERR_PROTOCOL'))
        assert.equal(err.message, `relay ${relay.peerId} answered /warren/relay/1.0.0 wrongly: ${why}`)
        return true
      })
    })
  }

  it("a relay's reasons are taken as one line, their control characters escaped", async () => {
    answer = JSON.stringify({ ...full, wouldRefuse: 'full\n\x1b]0;x\x07' })
    assert.equal((await queryRelayInfo(node, relay.peerId)).wouldRefuse, 'full\\n\\x1b]0;x\\x07')
    answer = JSON.stringify({ accepted: false, reason: 'no\r\nhint: fake' })
    assert.deepEqual(await declareAdmits(node, relay.peerId, { any: false, ids: [] }), {
      accepted: false,
      reason: 'no\\r\\nhint: fake',
    })
  })

  it('admits: the two answers a relay gives are taken; anything else is ERR_PROTOCOL', async () => {
    const declaration = { any: false, ids: [] }
    answer = '{"accepted":true,"ids":3}'
    assert.deepEqual(await declareAdmits(node, relay.peerId, declaration), { accepted: true, ids: 3 })
    answer = '{"accepted":false,"reason":"not a member"}'
    assert.deepEqual(await declareAdmits(node, relay.peerId, declaration), { accepted: false, reason: 'not a member' })
    for (const body of [
      '{nope',
      '{"accepted":true}',
      `{"accepted":false,"reason":${deep(1_000)}}`,
      '{"accepted":"yes"}',
    ]) {
      answer = body
      await assert.rejects(
        declareAdmits(node, relay.peerId, declaration),
        (err) => {
          assert.ok(isWarrenError(err, 'ERR_PROTOCOL'))
          assert.equal(
            err.message,
            `relay ${relay.peerId} answered /warren/relay/admits/1.0.0 wrongly: not {"accepted":true,"ids":<n>} or {"accepted":false,"reason":"…"}`,
          )
          return true
        },
        body.slice(0, 40),
      )
    }
  })
})
