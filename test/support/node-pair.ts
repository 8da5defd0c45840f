/**
 * Two in-process Warren nodes on loopback for the access-port and gateway tests: a host node with HTTP, raw-TCP and
 * WebSocket services on real loopback servers (web-app.ts), and a client node whose access port the tests talk to.
 */
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { validateConfig } from '../../src/config/load.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import { encodeTicket } from '../../src/identity/ticket.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'
import { freePort } from './servers.ts'
import { startRawServer, startWebApp } from './web-app.ts'

export interface NodePair {
  host: WarrenNode
  client: WarrenNode
  /** The client's access port, host:port. */
  access: string
  hostBase36: string
  web: Awaited<ReturnType<typeof startWebApp>>
  raw: Awaited<ReturnType<typeof startRawServer>>
  stop(): Promise<void>
}

/**
 * Host `n1` with services web (tcp), hweb (type http), raw (tcp banner+echo), down (nothing listening), private
 * (allowed only for an unrelated node); client `n0` knows `n1`, `ghost` (a node at a dead address) and `lost`
 * (an id with no address).
 */
export async function startNodePair(
  opts: { client?: Partial<ConfigInput>; host?: Partial<ConfigInput>; dns?: boolean; gatewayFastPath?: boolean } = {},
): Promise<NodePair> {
  const [web, raw, dead] = await Promise.all([startWebApp(), startRawServer(), freePort()])
  const [hostKey, clientKey, otherKey] = await Promise.all([generateNodeKey(), generateNodeKey(), generateNodeKey()])
  const hostId = peerIdFromPrivateKey(hostKey)
  const clientId = peerIdFromPrivateKey(clientKey)
  const otherId = peerIdFromPrivateKey(otherKey).toString()
  const host = await WarrenNode.start({
    privateKey: hostKey,
    config: validateConfig({
      peers: { n0: clientId.toString(), other: otherId },
      services: {
        web: `/tcp/${web.port}`,
        hweb: { target: `/tcp/${web.port}`, type: 'http' },
        raw: `/tcp/${raw.port}`,
        down: `/tcp/${dead}`,
        private: { target: `/tcp/${web.port}`, allow: ['other'] },
      },
      ...opts.host,
    }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    preset: 'test',
  })
  const ghostId = peerIdFromPrivateKey(await generateNodeKey())
  const lostId = peerIdFromPrivateKey(await generateNodeKey())
  const client = await WarrenNode.start({
    privateKey: clientKey,
    config: validateConfig({
      peers: {
        n1: host.identity().ticket,
        ghost: encodeTicket({ id: ghostId, addrs: [multiaddr(`/ip4/127.0.0.1/tcp/${dead}`)] }),
        lost: lostId.toString(),
      },
      ...opts.client,
    }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    preset: 'test',
    ...(opts.dns === true ? { dnsListen: '127.0.0.1:0' } : {}),
    ...(opts.gatewayFastPath === undefined ? {} : { gatewayFastPath: opts.gatewayFastPath }),
  })
  return {
    host,
    client,
    access: client.status().access!.listen,
    hostBase36: formatNodeIdBase36(hostId),
    web,
    raw,
    stop: async () => {
      await client.stop()
      await host.stop()
      await Promise.all([web.close(), raw.close()])
    },
  }
}
