/**
 * The relay-link watch (src/relay/client/relay-links.ts) on real nodes: its timer is off while this node has no
 * connection to a relay and no relayed connection, runs while it has one, and stops again when it closed. A
 * connection to a node that is no relay wakes it for one round only.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { watchRelayLinks } from '../../src/relay/client/relay-links.ts'
import { eventually } from '../support/eventually.ts'

describe('watchRelayLinks sleeps with nothing to watch', () => {
  let node: WarrenLibp2p
  let relay: WarrenLibp2p
  let other: WarrenLibp2p
  before(async () => {
    ;[node, relay, other] = await Promise.all(
      [[], ['/ip4/127.0.0.1/tcp/0'], ['/ip4/127.0.0.1/tcp/0']].map(async (listen) =>
        createNode({ privateKey: await generateNodeKey(), listen }),
      ),
    )
  })
  after(async () => {
    await Promise.all([node, relay, other].map((n) => n?.stop()))
  })

  it('is off without relay connections, on while one is open, off again after it closed', async () => {
    const relayAddr = relay.getMultiaddrs()[0]!.toString()
    const links = watchRelayLinks(node, { relays: [relayAddr], checkMs: 20 })
    try {
      await eventually(() => links.sleeping || undefined, { timeoutMs: 5_000, message: 'asleep with no connection' })

      // a connection to a node that is not a relay: one round, then asleep again
      const toOther = await node.dial(other.getMultiaddrs()[0]!)
      await eventually(() => links.sleeping || undefined, { timeoutMs: 5_000, message: 'asleep beside a non-relay' })
      assert.equal(toOther.status, 'open')

      const toRelay = await node.dial(relay.getMultiaddrs()[0]!)
      assert.equal(links.sleeping, false, 'the connection to the relay woke the watch')
      // a fixed wait on purpose: the watch must keep looking at the relay connection
      await new Promise((r) => setTimeout(r, 200))
      assert.equal(links.sleeping, false, 'awake while the relay connection is open')

      await toRelay.close()
      await eventually(() => links.sleeping || undefined, { timeoutMs: 5_000, message: 'asleep once it closed' })
    } finally {
      links.stop()
    }
    assert.equal(links.sleeping, true)
  })
})
