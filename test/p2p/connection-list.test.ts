/**
 * The list of all connections (src/p2p/patches/connection-list.ts, UPSTREAM.md row 30), on a real hub with real
 * peers over TCP: js-libp2p's own `getConnections()` copies the list built so far once per peer (the guard counts
 * the elements `Array.prototype.concat` copies while it runs); Warren's copies none and returns the same
 * connections in the same order.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { Connection } from '@libp2p/interface'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { patchesMissed } from '../../src/p2p/patches/status.ts'
import { eventually } from '../support/eventually.ts'

const PEERS = 16
const nodes: WarrenLibp2p[] = []
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
})

/** A hub with {@link PEERS} peers connected to it, all stock or all Warren's. */
async function hub(stock: boolean): Promise<WarrenLibp2p> {
  const make = async (listen: string[]) => {
    const n = await createNode({ privateKey: await generateNodeKey(), listen, stock })
    nodes.push(n)
    return n
  }
  const h = await make(['/ip4/127.0.0.1/tcp/0'])
  const peers = await Promise.all(Array.from({ length: PEERS }, () => make([])))
  await Promise.all(peers.map((p) => p.dial(h.getMultiaddrs()[0]!)))
  await eventually(() => h.getConnections().length === PEERS || undefined, { message: `${PEERS} connections` })
  return h
}

/** Runs `fn`, counting the elements that `Array.prototype.concat` copies meanwhile. */
function copiedByConcat<T>(fn: () => T): { result: T; copied: number } {
  const concat = Array.prototype.concat
  let copied = 0
  Array.prototype.concat = function (this: unknown[], ...items: unknown[]) {
    copied += this.length
    return concat.apply(this, items)
  }
  try {
    return { result: fn(), copied }
  } finally {
    Array.prototype.concat = concat
  }
}

/** Every connection of the hub's connection manager, peer by peer, as its table holds them. */
function table(h: WarrenLibp2p): Connection[] {
  const cm = (h as unknown as { components: { connectionManager: { connections: Map<unknown, Connection[]> } } })
    .components.connectionManager
  return [...cm.connections.values()].flat()
}

describe('the list of all connections', () => {
  it("js-libp2p's copies the list built so far once per peer (guard)", async () => {
    const h = await hub(true)
    const { result, copied } = copiedByConcat(() => h.getConnections())
    assert.equal(result.length, PEERS)
    // 0 + 1 + … + (PEERS - 1)
    assert.equal(copied, (PEERS * (PEERS - 1)) / 2)
  })

  it("Warren's copies nothing, and lists the same connections in the same order; per peer as before", async () => {
    const h = await hub(false)
    const { result, copied } = copiedByConcat(() => h.getConnections())
    assert.equal(copied, 0)
    assert.deepEqual(
      result.map((c) => c.id),
      table(h).map((c) => c.id),
    )
    assert.equal(result.length, PEERS)
    const one = result[3]!
    assert.deepEqual(
      h.getConnections(one.remotePeer).map((c) => c.id),
      [one.id],
    )
    assert.notEqual(h.getConnections(), h.getConnections(), 'a new array each call')
    assert.equal(patchesMissed().has('linearConnectionList'), false)
  })
})
