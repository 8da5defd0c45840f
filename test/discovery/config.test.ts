/** The `discovery` section of config.json: defaults when absent, and every bad value named with its field and fix. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { validateConfig } from '../../src/config/load.ts'
import { discoverySettings } from '../../src/discovery/settings.ts'
import { isWarrenError } from '../../src/errors.ts'

const RELAY = '/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWBSxVvbHbNRj66jKoJevZ4dbPEcmkzSoK4w6iSuoLp2Rr'

function problems(input: unknown): string[] {
  try {
    validateConfig(input, 'config.json')
  } catch (err) {
    assert.ok(isWarrenError(err, 'ERR_CONFIG_INVALID'))
    return err.details?.problems as string[]
  }
  assert.fail('expected the config to be refused')
}

describe('config: discovery', () => {
  it('absent: DHT and mDNS on, private addresses off, relays are the bootstrap list', () => {
    assert.deepEqual(discoverySettings(validateConfig({ relays: [RELAY] }, 'config.json')), {
      dht: true,
      dhtMode: 'auto',
      mdns: true,
      privateAddresses: false,
      bootstrap: [RELAY],
      lookupTimeoutMs: 10_000,
      cacheTtlMs: 300_000,
      republishMs: 1_200_000,
    })
    const s = discoverySettings(
      validateConfig({ relays: [RELAY], discovery: { mdns: false, bootstrap: [RELAY], cacheTtlMs: 0 } }, 'c'),
    )
    assert.equal(s.mdns, false)
    assert.deepEqual(s.bootstrap, [RELAY])
    assert.equal(s.cacheTtlMs, 0)
  })

  it('bad values are refused with the field and what is allowed', () => {
    assert.deepEqual(problems({ discovery: { dhtMode: 'relay' } }), [
      'discovery.dhtMode: "relay" is not one of "auto", "server", "client"',
    ])
    assert.deepEqual(problems({ discovery: { bootstrap: ['/ip4/203.0.113.5/tcp/4001'] } }), [
      'discovery.bootstrap[0]: "/ip4/203.0.113.5/tcp/4001" does not end with /p2p/<relay id>: copy the address from `warren relay status` on the relay',
    ])
    assert.deepEqual(problems({ discovery: { lookupTimeoutMs: 50, republishMs: 3_600_000 } }), [
      'discovery.lookupTimeoutMs: 50 is too small: use a number of at least 100',
      'discovery.republishMs: 3600000 is too large: use a number of at most 1800000',
    ])
    assert.deepEqual(problems({ discovery: { mdns: 'yes', dns: true } }), [
      'discovery.mdns: expected boolean, got "yes"',
      'discovery: unknown key "dns" (see docs/config.md for the keys)',
    ])
  })
})
