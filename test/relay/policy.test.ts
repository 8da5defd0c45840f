/** Relay settings, policy decisions and relay error parsing, without a network. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { flagsToConfig } from '../../src/cli/relay.ts'
import { mergeRelayInput } from '../../src/daemon/relay-daemon.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import { parseRelayAddr } from '../../src/relay/client/home-relay.ts'
import { DEFAULT_LIMITS, validateRelayConfig } from '../../src/relay/server/config.ts'
import { ipGroup, RelayPolicy } from '../../src/relay/server/policy.ts'
import { circuitRefused, relayStatusOf } from '../../src/relay/status.ts'

const idA = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
const A = idA.toString()
const B = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
const C = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

function problems(input: unknown): string[] {
  try {
    validateRelayConfig(input)
  } catch (err) {
    return (err as { details: { problems: string[] } }).details.problems
  }
  return []
}

describe('relay settings', () => {
  it('defaults: TCP 4001, STUN 3478, public, bounded 1 MiB / 120 s, base36 allow entries stored as base58', () => {
    const cfg = validateRelayConfig({ allow: [formatNodeIdBase36(idA)] })
    assert.deepEqual(cfg.listen, ['/ip4/0.0.0.0/tcp/4001'])
    assert.deepEqual(cfg.stun, { port: 3478, host: '0.0.0.0' })
    assert.equal(cfg.private, false)
    assert.deepEqual(cfg.limits, DEFAULT_LIMITS)
    assert.deepEqual(cfg.allow, [A])
    assert.deepEqual(cfg.api, { socket: 'relay.sock' })
  })

  it('every bad setting is named with its fix', () => {
    assert.deepEqual(problems({ ws: { port: 443, cert: 'c.pem' } }), [
      'ws.key: is missing: WSS needs both a certificate and its private key (PEM files)',
    ])
    assert.deepEqual(
      problems({ ws: { port: 4002, cert: 'c', key: 'k' }, behindProxy: { host: 'relay.example.net' } }),
      ['ws.cert: must be absent behind a proxy: the proxy terminates TLS, so the WebSocket port speaks plain ws'],
    )
    assert.deepEqual(problems({ ws: { port: 1 }, behindProxy: { host: 'not a host' } }), [
      'behindProxy.host: is not a DNS name such as relay.example.net',
    ])
    assert.deepEqual(problems({ limits: { dataBytes: 10 } }), [
      'limits.dataBytes: Too small: expected number to be >=1024',
    ])
    assert.deepEqual(problems({ listen: ['x'] }), [
      'listen[0]: is not a valid multiaddr (String multiaddr must start with "/")',
    ])
    assert.deepEqual(problems({ relays: [] }), ['(top level): unknown key(s) "relays"'])
  })

  it('flags override relay.json; allow lists are joined; --cert needs --ws', () => {
    const merged = mergeRelayInput(
      { allow: [A], limits: { maxCircuits: 9, dataBytes: 2048 }, ws: { port: 1, host: '127.0.0.1' } },
      flagsToConfig({ allow: [B], dataLimit: 4096, ws: 2, private: true }),
    )
    assert.deepEqual(merged, {
      allow: [A, B],
      limits: { maxCircuits: 9, dataBytes: 4096 },
      ws: { port: 2, host: '127.0.0.1' },
      private: true,
    })
    assert.throws(() => flagsToConfig({ cert: 'c.pem' }), {
      code: 'ERR_USAGE',
      message: '--cert and --key need --ws <port>: they make the WebSocket listener WSS',
    })
  })
})

describe('relay policy', () => {
  const limits = { ...DEFAULT_LIMITS, maxReservations: 2, maxCircuits: 3, maxCircuitsPerNode: 1 }
  const pub = new RelayPolicy({ allow: [A], private: false, limits })
  const priv = new RelayPolicy({ allow: [A], private: true, limits })
  const load = (total: number, per: Record<string, number> = {}) => ({ total, perNode: (p: string) => per[p] ?? 0 })

  it('allowed nodes: unlimited reservations, never refused', () => {
    assert.equal(pub.limitFor(A), undefined)
    assert.equal(pub.reservationRefusal(A, { boundedHeld: 99 }), undefined)
    assert.equal(priv.reservationRefusal(A, { boundedHeld: 99 }), undefined)
    assert.equal(pub.circuitRefusal(A, B, load(99, { [B]: 99 })), undefined)
  })

  it('other nodes: bounded, capped, or refused on a private relay, with the reason in words', () => {
    assert.deepEqual(pub.limitFor(B), { dataBytes: DEFAULT_LIMITS.dataBytes, durationSec: DEFAULT_LIMITS.durationSec })
    assert.equal(pub.reservationRefusal(B, { boundedHeld: 1 }), undefined)
    assert.equal(
      pub.reservationRefusal(B, { boundedHeld: 2 }),
      'the relay already holds its maximum of 2 reservations for nodes not on its allow list',
    )
    assert.equal(
      priv.reservationRefusal(B, { boundedHeld: 0 }),
      `the relay is private and node ${B} is not on its allow list`,
    )
    assert.equal(pub.circuitRefusal(B, C, load(3)), 'the relay already carries its maximum of 3 relayed connections')
    assert.equal(
      pub.circuitRefusal(B, C, load(1, { [C]: 1 })),
      `node ${C} already has its maximum of 1 relayed connections through this relay`,
    )
    assert.equal(pub.circuitRefusal(B, A, load(1, { [A]: 5 })), undefined, 'the allowed end has no per-node cap')
    assert.equal(
      priv.circuitRefusal(B, C, load(0)),
      `the relay is private and neither ${B} nor ${C} is on its allow list`,
    )
    assert.equal(priv.circuitRefusal(B, A, load(0)), undefined, 'anyone may reach an allowed node')
  })

  it('other nodes: at most maxReservationsPerIp from one address; allowed nodes are not counted or capped', () => {
    const perIp = new RelayPolicy({ allow: [A], private: false, limits: { ...limits, maxReservationsPerIp: 2 } })
    assert.equal(perIp.reservationRefusal(B, { boundedHeld: 1, sameIp: { ip: '192.0.2.7', held: 1 } }), undefined)
    assert.equal(
      perIp.reservationRefusal(B, { boundedHeld: 1, sameIp: { ip: '192.0.2.7', held: 2 } }),
      'the relay already holds its maximum of 2 reservations for nodes at 192.0.2.7 not on its allow list',
    )
    assert.equal(perIp.reservationRefusal(A, { boundedHeld: 9, sameIp: { ip: '192.0.2.7', held: 9 } }), undefined)
    assert.equal(perIp.reservationRefusal(B, { boundedHeld: 1 }), undefined, 'an uncapped address (behind a proxy)')
  })

  it('counts IPv4 addresses one by one and IPv6 addresses by /64', () => {
    assert.equal(ipGroup('203.0.113.9'), '203.0.113.9')
    assert.equal(ipGroup('::ffff:203.0.113.9'), '203.0.113.9')
    assert.equal(ipGroup('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64')
    assert.equal(ipGroup('2001:0DB8:0001:0002:ffff:0:0:9'), '2001:db8:1:2::/64')
    assert.equal(ipGroup('2001:db8::1'), '2001:db8:0:0::/64')
    assert.equal(ipGroup('::1'), '0:0:0:0::/64')
  })
})

describe('relay addresses and statuses', () => {
  it('a relay address must name the relay', () => {
    assert.equal(parseRelayAddr(`/ip4/127.0.0.1/tcp/4001/p2p/${A}`).id.toString(), A)
    assert.throws(() => parseRelayAddr('/ip4/127.0.0.1/tcp/4001'), {
      code: 'ERR_CONFIG_INVALID',
      message: 'relay address /ip4/127.0.0.1/tcp/4001 does not end with /p2p/<relay id>',
    })
  })

  it("reads js-libp2p's relay status out of its errors and words it", () => {
    assert.equal(relayStatusOf(new Error('failed to connect via relay with status NO_RESERVATION')), 'NO_RESERVATION')
    assert.equal(
      relayStatusOf(new AggregateError([new Error('reservation failed with status PERMISSION_DENIED')], 'x')),
      'PERMISSION_DENIED',
    )
    assert.equal(relayStatusOf(new Error('ECONNREFUSED')), undefined)
    assert.deepEqual(circuitRefused(A, B, 'NO_RESERVATION').toJSON(), {
      code: 'ERR_DIAL_FAILED',
      message: `node ${B} holds no reservation on relay ${A}, so the relay cannot reach it`,
      hint: 'The node may be offline or have moved to another relay; get a fresh ticket with `warren id` on that node.',
      details: { relay: A, node: B, status: 'NO_RESERVATION' },
    })
  })
})
