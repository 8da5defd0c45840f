/**
 * A testnet: N Warren nodes in this process, listening on loopback, each knowing the others by alias
 * (`n0`, `n1`, …). Made for fast integration tests and for trying Warren from a script.
 *
 * @example
 * ```ts
 * const net = await createTestnet(2, { services: { 1: { web: { target: '/tcp/8080', allow: ['*'] } } } })
 * const stream = await net.nodes[0].openService('n1', 'web')
 * await net.stop()
 * ```
 */

import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { validateConfig } from '../config/load.ts'
import type { ConfigInput } from '../config/schema.ts'
import { generateNodeKey } from '../identity/keys.ts'
import { WarrenNode, type WarrenNodeStartOptions } from '../node/warren-node.ts'

export interface TestnetOptions {
  /** Services per node index. */
  services?: Record<number, ConfigInput['services']>
  /** Extra config per node index (merged over the generated one); a function gets every node's id. */
  config?: Record<number, Partial<ConfigInput> | ((ids: string[]) => Partial<ConfigInput>)>
  /** Whether node i gets aliases for the others (default true). */
  linkPeers?: boolean
  log?: WarrenNodeStartOptions['log']
  /** Start option `gatewayFastPath` for every node (default: the environment's choice). */
  gatewayFastPath?: boolean
}

export interface Testnet {
  nodes: WarrenNode[]
  /** Ticket of node i (with its live loopback address). */
  ticket(i: number): string
  stop(): Promise<void>
}

export async function createTestnet(n: number, opts: TestnetOptions = {}): Promise<Testnet> {
  const keys = await Promise.all(Array.from({ length: n }, () => generateNodeKey()))
  const ids = keys.map((k) => peerIdFromPrivateKey(k).toString())
  const nodes: WarrenNode[] = []
  try {
    for (let i = 0; i < n; i++) {
      const peers: Record<string, string> = {}
      if (opts.linkPeers !== false) {
        for (const [j, id] of ids.entries()) if (j !== i) peers[`n${j}`] = id
      }
      const extra = opts.config?.[i]
      const input: ConfigInput = {
        peers,
        services: opts.services?.[i] ?? {},
        ...(typeof extra === 'function' ? extra(ids) : extra),
      }
      const startOpts: WarrenNodeStartOptions = {
        privateKey: keys[i]!,
        config: validateConfig(input, `testnet node ${i} config`),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        preset: 'test',
      }
      if (opts.log !== undefined) startOpts.log = opts.log
      if (opts.gatewayFastPath !== undefined) startOpts.gatewayFastPath = opts.gatewayFastPath
      nodes.push(await WarrenNode.start(startOpts))
    }
    // every node learns every other node's live address, so aliases dial without tickets
    for (const node of nodes) {
      for (const other of nodes) {
        if (other !== node) node.addressBook.resolve(other.identity().ticket)
      }
    }
  } catch (err) {
    await Promise.allSettled(nodes.map((x) => x.stop()))
    throw err
  }
  return {
    nodes,
    ticket: (i) => nodes[i]!.identity().ticket,
    stop: async () => {
      await Promise.allSettled(nodes.map((x) => x.stop()))
    },
  }
}
