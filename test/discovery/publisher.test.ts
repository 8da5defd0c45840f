/** Publishing: back-off while no DHT server is known, republishing on its interval, the newest record winning. */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { validateConfig } from '../../src/config/load.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'
import { validateRelayConfig } from '../../src/relay/server/config.ts'
import { type Relay, startRelay } from '../../src/relay/server/relay-node.ts'
import { eventually } from '../support/eventually.ts'

const node = async (config: Record<string, unknown>, lines: string[] = []): Promise<WarrenNode> =>
  WarrenNode.start({
    privateKey: await generateNodeKey(),
    config: validateConfig({ listen: ['/ip4/127.0.0.1/tcp/0'], ...config }),
    preset: 'test',
    accessListen: false,
    log: (level, message) => lines.push(`${level} ${message}`),
  })

describe('record publisher', () => {
  let relay: Relay
  const nodes: WarrenNode[] = []
  before(async () => {
    relay = await startRelay({
      privateKey: await generateNodeKey(),
      config: validateRelayConfig({
        listen: ['/ip4/127.0.0.1/tcp/0'],
        stun: false,
        discovery: { privateAddresses: true },
      }),
    })
  })
  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
    await relay?.stop()
  })

  it('with no DHT server known: says why in status, logs once, retries with back-off (1 s, 2 s, …)', async () => {
    const lines: string[] = []
    const lonely = await node({ discovery: { privateAddresses: true } }, lines)
    nodes.push(lonely)
    const pub = lonely.discovery!.publisher!
    const first = await eventually(() => pub.status().lastAttemptAt, { timeoutMs: 2_000, message: 'first attempt' })
    assert.equal(pub.status().lastError, 'no DHT server is known yet (they are the relays in `relays`)')
    assert.ok(Math.abs(pub.status().nextAt! - first - 1_000) < 200, 'first retry after 1 s')
    const second = await eventually(
      () => (pub.status().lastAttemptAt! > first ? pub.status().lastAttemptAt : undefined),
      { timeoutMs: 3_000, message: 'second attempt' },
    )
    assert.ok(Math.abs(pub.status().nextAt! - second - 2_000) < 200, 'second retry after 2 s')
    assert.equal(pub.status().lastSuccessAt, undefined)
    const logged = lines.filter((l) => l.includes("publishing this node's DHT record"))
    assert.deepEqual(logged, [
      "debug publishing this node's DHT record: no DHT server is known yet (they are the relays in `relays`); trying again in 1 s",
    ])
    assert.equal(lonely.status().discovery?.dht.enabled, true)
  })

  it('republishes every republishMs; readers get the newest record', async () => {
    const shared = {
      relays: [relay.addrs[0]!],
      discovery: { privateAddresses: true, republishMs: 1_000, cacheTtlMs: 0 },
    }
    const a = await node(shared)
    const b = await node(shared)
    nodes.push(a, b)
    const pub = a.discovery!.publisher!
    const t1 = await eventually(() => pub.status().lastSuccessAt, { timeoutMs: 10_000, message: 'first publish' })
    // the record's publishing time, from a lookup's age of it
    const published = async (): Promise<number> => {
      const r = await b.lookup(a.peerId.toString(), { all: false })
      assert.equal(r.source, 'dht')
      return Date.now() - r.addrs[0]!.ageMs!
    }
    const seq1 = await published()
    const t2 = await eventually(() => (pub.status().lastSuccessAt! > t1 ? pub.status().lastSuccessAt : undefined), {
      timeoutMs: 5_000,
      message: 'republish',
    })
    assert.ok(t2 - t1 >= 900, `republished after ${t2 - t1} ms`)
    const seq2 = await published()
    assert.ok(seq2 - seq1 >= 900, `the newer record is read (published ${seq2 - seq1} ms later)`)
  })
})
