import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { Resolver } from '../../src/discovery/resolver.ts'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import {
  openPeerRecord,
  publishableAddrs,
  RECORD_MAX_AGE_MS,
  RECORD_MAX_SKEW_MS,
  recordKey,
  sealPeerRecord,
  selectPeerRecord,
  validatePeerRecord,
} from '../../src/p2p/peer-record.ts'

const addrs = [
  multiaddr('/ip4/198.51.100.7/tcp/4781'),
  multiaddr('/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWBSxVvbHbNRj66jKoJevZ4dbPEcmkzSoK4w6iSuoLp2Rr/p2p-circuit'),
]

describe('signed peer records', () => {
  it('round-trip: the signer, its addresses and the publishing time', async () => {
    const key = await generateNodeKey()
    const now = Date.now()
    const rec = await openPeerRecord(await sealPeerRecord(key, addrs, now))
    assert.ok(rec.id.equals(peerIdFromPrivateKey(key)))
    assert.deepEqual(rec.addrs.map(String), addrs.map(String))
    assert.equal(rec.seq, now)
  })

  it('the validator refuses records under another id, expired, from the future, or tampered with', async () => {
    const key = await generateNodeKey()
    const other = await generateNodeKey()
    const id = peerIdFromPrivateKey(key)
    const now = Date.now()
    const good = await sealPeerRecord(key, addrs, now)
    await validatePeerRecord(recordKey(id), good, now)
    await assert.rejects(
      validatePeerRecord(recordKey(peerIdFromPrivateKey(other)), good, now),
      new RegExp(`^Error: the record of ${id} is stored under the key of 12D3KooW\\w+$`),
    )
    await assert.rejects(
      validatePeerRecord(recordKey(id), await sealPeerRecord(key, addrs, now - RECORD_MAX_AGE_MS - 1), now),
      new RegExp(`^Error: the record of ${id} expired$`),
    )
    await assert.rejects(
      validatePeerRecord(recordKey(id), await sealPeerRecord(key, addrs, now + RECORD_MAX_SKEW_MS + 1), now),
      new RegExp(`^Error: the record of ${id} is dated in the future$`),
    )
    const tampered = Uint8Array.from(good)
    tampered[tampered.length - 1]! ^= 1
    await assert.rejects(validatePeerRecord(recordKey(id), tampered, now))
    const many = Array.from({ length: 33 }, (_, i) => multiaddr(`/ip4/198.51.100.7/tcp/${1000 + i}`))
    await assert.rejects(
      validatePeerRecord(recordKey(id), await sealPeerRecord(key, many, now), now),
      new RegExp(`^Error: the record of ${id} has more than 32 addresses$`),
    )
    await assert.rejects(
      validatePeerRecord(recordKey(id), new Uint8Array(4097), now),
      new RegExp(`^Error: the record of ${id} is larger than 4096 bytes$`),
    )
    const wrongNs = new TextEncoder().encode('/pk/xyz')
    await assert.rejects(
      validatePeerRecord(wrongNs, good, now),
      /^Error: the key is not in the \/warren-peer\/ namespace$/,
    )
  })

  it('the selector picks the newest valid record', async () => {
    const key = await generateNodeKey()
    const now = Date.now()
    const older = await sealPeerRecord(key, addrs.slice(0, 1), now - 1000)
    const newer = await sealPeerRecord(key, addrs, now)
    assert.equal(
      await selectPeerRecord(recordKey(peerIdFromPrivateKey(key)), [older, newer, new Uint8Array([1, 2])]),
      1,
    )
    assert.equal(await selectPeerRecord(recordKey(peerIdFromPrivateKey(key)), [newer, older]), 0)
  })

  it('private addresses are published only with privateAddresses', () => {
    const mixed = [
      multiaddr('/ip4/127.0.0.1/tcp/1'),
      multiaddr('/ip4/192.168.1.5/tcp/1'),
      multiaddr('/ip4/198.18.0.4/tcp/1'),
      ...addrs,
    ]
    // 198.51.100.0/24 and 203.0.113.0/24 (documentation ranges) count as private for libp2p too
    assert.deepEqual(publishableAddrs(mixed, false).map(String), [])
    assert.equal(publishableAddrs(mixed, true).length, mixed.length)
    assert.deepEqual(
      publishableAddrs([multiaddr('/ip4/1.2.3.4/tcp/1'), multiaddr('/dns4/relay.example.net/tcp/443/wss')], false).map(
        String,
      ),
      ['/ip4/1.2.3.4/tcp/1', '/dns4/relay.example.net/tcp/443/wss'],
    )
  })
})

describe('resolver without network sources', () => {
  it('uses config addresses, and with nothing to ask fails with ERR_NO_ADDRESSES listing what was tried', async () => {
    const id = peerIdFromPrivateKey(await generateNodeKey())
    const r = new Resolver({ timeoutMs: 1000, cacheTtlMs: 60_000 })
    const found = await r.lookup(id, { configAddrs: addrs })
    assert.equal(found.source, 'config')
    assert.deepEqual(
      found.addrs,
      addrs.map((a) => ({ addr: a.toString(), source: 'config' })),
    )
    await assert.rejects(r.lookup(id), (err: unknown) => {
      assert.ok(isWarrenError(err, 'ERR_NO_ADDRESSES'))
      assert.equal(err.message, `no address is known for node ${id}`)
      assert.deepEqual(err.details?.tried, [
        { source: 'cache', found: false, note: 'nothing cached' },
        { source: 'config', found: false, note: 'no address in peers, tickets or --addr' },
      ])
      return true
    })
  })

  it('cache entries expire after the TTL and can be dropped', async () => {
    const id = peerIdFromPrivateKey(await generateNodeKey())
    const r = new Resolver({ timeoutMs: 1000, cacheTtlMs: 50 })
    r.cache.set(id.toString(), { addrs, origin: 'dht', cachedAt: Date.now(), madeAt: Date.now() - 5000 })
    const hit = await r.lookup(id)
    assert.equal(hit.source, 'cache')
    assert.equal(hit.addrs[0]!.origin, 'dht')
    r.invalidate(id)
    await assert.rejects(r.lookup(id), { code: 'ERR_NO_ADDRESSES' })
    r.cache.set(id.toString(), { addrs, origin: 'mdns', cachedAt: Date.now() - 60, madeAt: Date.now() })
    await assert.rejects(r.lookup(id), { code: 'ERR_NO_ADDRESSES' })
  })
})
