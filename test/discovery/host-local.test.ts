import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { isHostLocalHost, shareableAddrs } from '../../src/discovery/host-local.ts'

const R = '12D3KooWN9pgk2FR4e3L4C96JdeKbn2WNubkjvX1ZdjeYysuCSMD'

describe('host-local addresses', () => {
  it('loopback and link-local hosts, v4, v6 and IPv4-mapped, and localhost', () => {
    for (const h of [
      '127.0.0.1',
      '127.9.9.9',
      '::1',
      '169.254.1.2',
      'fe80::1',
      'FE80::abcd',
      '::ffff:127.0.0.1',
      'localhost',
    ])
      assert.equal(isHostLocalHost(h), true, h)
    for (const h of ['198.18.0.1', '10.0.0.1', '::', '2001:db8::1', 'fec0::1', 'relay.example.net', '128.0.0.1'])
      assert.equal(isHostLocalHost(h), false, h)
  })

  it('are left out when the node has other addresses, circuits through loopback relays too', () => {
    const addrs = [
      '/ip4/127.0.0.1/tcp/4781',
      '/ip4/198.19.2.2/tcp/4781',
      '/ip6/fe80::1/tcp/4781',
      `/ip4/198.18.0.1/tcp/4001/p2p/${R}/p2p-circuit`,
      `/ip4/127.0.0.1/tcp/4001/p2p/${R}/p2p-circuit`,
      `/ip4/169.254.3.3/tcp/4001/p2p/${R}/p2p-circuit`,
    ].map((a) => multiaddr(a))
    assert.deepEqual(shareableAddrs(addrs).map(String), [
      '/ip4/198.19.2.2/tcp/4781',
      `/ip4/198.18.0.1/tcp/4001/p2p/${R}/p2p-circuit`,
    ])
  })

  it('are kept when the node has nothing else, or when the operator configured that relay address', () => {
    const only = [multiaddr('/ip4/127.0.0.1/tcp/4781'), multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${R}/p2p-circuit`)]
    assert.deepEqual(shareableAddrs(only).map(String), only.map(String))
    const mixed = [multiaddr('/ip4/192.0.2.7/tcp/4781'), only[1]!]
    assert.deepEqual(
      shareableAddrs(mixed, [`/ip4/127.0.0.1/tcp/4001/p2p/${R}/p2p-circuit`]).map(String),
      mixed.map(String),
    )
  })
})
