/**
 * Port-mapping settings applied to a running node (`warren reload`): the node's port-mapping part against a PCP server
 * on a real loopback UDP socket, on a real in-process node listening on 127.0.0.1. Turned off, the mappings are deleted
 * at the gateway and their addresses leave the node's addresses; turned on again, they come back; a protocol switched
 * off is not asked. And the reload itself: a changed `traversal.portMapping` is applied, not left for a restart.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { validateConfig } from '../../src/config/load.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { PortMappingPart } from '../../src/node/port-mapping-part.ts'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { PcpClient } from '../../src/traversal/portmap/pcp.ts'
import { eventually } from '../support/eventually.ts'
import { startNode } from '../support/nodes.ts'
import { TestPcpServer } from './pcp-test-server.ts'

const nodes: WarrenNode[] = []
const servers: TestPcpServer[] = []
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()))
  for (const s of servers) s.socket.close()
})

const config = (portMapping: Record<string, unknown>, extra: ConfigInput = {}) =>
  validateConfig({ traversal: { enabled: false, portMapping }, ...extra })

describe('port-mapping settings applied to a running node', () => {
  it('off deletes the mappings and their addresses, on maps again, a protocol off is not asked', async () => {
    const server = new TestPcpServer()
    servers.push(server)
    const pcpPort = await server.listen()
    const node = await startNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      config: { traversal: { enabled: false, portMapping: { enabled: false } } },
    })
    nodes.push(node)
    const tcpPort = Number(node.libp2p.getMultiaddrs()[0]!.toString().split('/')[4])
    const mapped = `/ip4/203.0.113.7/tcp/${tcpPort + 10_000}`
    const announced = () => node.libp2p.getMultiaddrs().some((a) => a.toString().startsWith(`${mapped}/`))
    const part = new PortMappingPart(node.libp2p, undefined, config({}), () => {}, {
      findGateway: async () => ({ gateway: '127.0.0.1', iface: 'lo', local: '127.0.0.1' }),
      clients: () => [new PcpClient('127.0.0.1', '127.0.0.1', pcpPort)],
    })
    await part.start()
    try {
      await eventually('mapped and announced', () => part.status().state === 'mapped' && announced())
      assert.deepEqual([...server.mappings.keys()], [`6/${tcpPort}`])
      assert.deepEqual(part.addrs(), [mapped])

      assert.equal(await part.reconfigure(config({})), false, 'the same settings change nothing')
      assert.equal(await part.reconfigure(config({ enabled: false })), true)
      assert.equal(server.mappings.size, 0, 'the mapping is deleted at the gateway')
      assert.equal(announced(), false, 'the mapped address left the node')
      assert.deepEqual(part.addrs(), [])
      assert.equal(part.enabled, false)
      assert.equal(part.status().state, 'off')

      assert.equal(await part.reconfigure(config({ enabled: true })), true)
      await eventually('mapped again', () => part.status().state === 'mapped' && announced())
      assert.equal(server.mappings.size, 1)

      const maps = server.maps
      assert.equal(await part.reconfigure(config({ pcp: false })), true)
      assert.equal(server.mappings.size, 0, 'the PCP mapping is deleted')
      await eventually('none', () => part.status().state === 'none')
      assert.equal(part.status().probes.pcp, 'off')
      assert.equal(server.maps, maps + 1, 'PCP asked only to delete, not to map')
      assert.equal(announced(), false)
    } finally {
      await part.stop()
    }
    assert.equal(server.mappings.size, 0)
  })

  it('a reload applies a changed traversal.portMapping instead of asking for a restart', async () => {
    const off = config({ enabled: false })
    const node = await startNode({ config: { traversal: { enabled: false, portMapping: { enabled: false } } } })
    nodes.push(node)
    assert.equal(node.status().portMapping, undefined)
    const pcpOnly = config({ enabled: true, natPmp: false, upnp: false })
    const on = node.reload(pcpOnly)
    assert.equal(on.portMapping, true)
    assert.deepEqual(on.needsRestart, [])
    const st = await eventually('the node asked its router', () => {
      const pm = node.status().portMapping
      return pm !== undefined && pm.state !== 'probing' && pm
    })
    // it listens nowhere: nothing to map, so nothing is asked of the host's real router
    assert.equal(st.state, 'none')
    assert.ok(['no port to map', 'no IPv4 default gateway'].includes(String(st.reason)), String(st.reason))
    const back = node.reload(off)
    assert.equal(back.portMapping, true)
    await eventually('off again', () => node.status().portMapping === undefined)
    const same = node.reload(off)
    assert.equal(same.portMapping, false)
    assert.deepEqual(
      node.reload(config({ enabled: false }, { traversal: { enabled: true, portMapping: { enabled: false } } }))
        .needsRestart,
      ['traversal'],
    )
  })
})
