/** DHT servers keep a bounded number of records: past `discovery.maxRecords`, the record stored longest ago goes. */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Key } from 'interface-datastore'
import { validateConfig } from '../../src/config/load.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'
import { DEFAULT_MAX_RECORDS, RecordStore } from '../../src/p2p/record-store.ts'
import { validateRelayConfig } from '../../src/relay/server/config.ts'
import { type Relay, startRelay } from '../../src/relay/server/relay-node.ts'
import { eventually } from '../support/eventually.ts'

const rec = (n: number): Key => new Key(`/dht/record/K${n}`)
const bytes = (n: number): Uint8Array => Uint8Array.of(n)

describe('record store', () => {
  it('evicts the record stored longest ago; storing again moves a record to the back; other keys are not counted', async () => {
    const store = new RecordStore({ maxRecords: 3 })
    for (const n of [1, 2, 3]) await store.put(rec(n), bytes(n))
    await store.put(new Key('/peers/P1'), bytes(9))
    await store.put(rec(1), bytes(11)) // 1 is now the newest
    await store.put(rec(4), bytes(4)) // evicts 2
    assert.equal(await store.has(rec(2)), false)
    assert.deepEqual(
      [1, 3, 4].map((n) => store.has(rec(n))),
      [true, true, true],
    )
    assert.deepEqual(await store.get(rec(1)), bytes(11))
    assert.equal(await store.has(new Key('/peers/P1')), true)
    assert.equal(store.records, 3)
    assert.equal(store.evicted, 1)
    await store.delete(rec(3))
    await store.put(rec(5), bytes(5)) // room again: nothing evicted
    assert.equal(store.records, 3)
    assert.equal(store.evicted, 1)
    assert.equal(new RecordStore().maxRecords, DEFAULT_MAX_RECORDS)
  })

  it('keeps a value that is a slice of a larger buffer in a buffer of its own, bytes unchanged', async () => {
    const store = new RecordStore()
    const slab = Buffer.allocUnsafe(4096).fill(1)
    const view = slab.subarray(100, 140).fill(7)
    await store.put(new Key('/peers/P2'), view)
    const kept = await store.get(new Key('/peers/P2'))
    assert.equal(kept.buffer.byteLength, 40)
    assert.deepEqual([...kept], [...view])
    const own = Uint8Array.of(1, 2, 3)
    await store.put(rec(7), own)
    assert.equal(await store.get(rec(7)), own)
  })

  it('relay.json discovery.maxRecords bounds what a relay keeps, and `relay status` shows it', async () => {
    const relay: Relay = await startRelay({
      privateKey: await generateNodeKey(),
      config: validateRelayConfig({
        listen: ['/ip4/127.0.0.1/tcp/0'],
        stun: false,
        discovery: { privateAddresses: true, maxRecords: 2 },
      }),
    })
    const nodes: WarrenNode[] = []
    after(async () => {
      await Promise.all(nodes.map((n) => n.stop()))
      await relay.stop()
    })
    for (let i = 0; i < 4; i++) {
      const node = await WarrenNode.start({
        privateKey: await generateNodeKey(),
        config: validateConfig({
          listen: ['/ip4/127.0.0.1/tcp/0'],
          relays: [relay.addrs[0]!],
          discovery: { privateAddresses: true },
        }),
        preset: 'test',
        accessListen: false,
      })
      nodes.push(node)
      // one at a time, so that the order of storing is known
      await eventually(() => node.discovery!.publisher!.status().lastSuccessAt, {
        timeoutMs: 15_000,
        message: `node ${i} publishes`,
      })
    }
    const dht = relay.status().dht
    assert.equal(dht.maxRecords, 2)
    assert.equal(dht.records, 2)
    assert.ok(dht.evicted >= 2, `evicted ${dht.evicted}`)
    // the newest publisher is still found through the relay
    const found = await nodes[0]!.lookup(nodes[3]!.peerId.toString(), { fresh: true })
    assert.equal(found.source, 'dht')
  })

  it('refuses a maxRecords that is not a positive integer, naming the field', () => {
    assert.throws(() => validateRelayConfig({ discovery: { maxRecords: 0 } }), {
      code: 'ERR_CONFIG_INVALID',
      message: 'relay settings are invalid:\n  discovery.maxRecords: Too small: expected number to be >=1',
    })
  })
})
