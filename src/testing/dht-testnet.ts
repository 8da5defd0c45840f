/**
 * A discovery testnet in one process: R Warren relays (DHT servers, bootstrapped to each other, each with a Delegated
 * Routing HTTP endpoint on loopback) and N nodes on loopback that know nothing but their relay — no aliases, no
 * tickets — so that every node must find the others by id through the DHT. Private addresses are kept in the DHT
 * (`discovery.privateAddresses`), since everything listens on 127.0.0.1.
 *
 * @example
 * ```ts
 * const net = await createDhtTestnet({ nodes: 20, relays: 2, services: { 5: { web: { target: '/tcp/8080', allow: ['*'] } } } })
 * await net.waitPublished()
 * const stream = await net.nodes[0].openService(net.nodes[5].peerId.toString(), 'web')
 * await net.stop()
 * ```
 */
import type { PrivateKey } from '@libp2p/interface'
import { validateConfig } from '../config/load.ts'
import type { ConfigInput } from '../config/schema.ts'
import { WarrenError } from '../errors.ts'
import { generateNodeKey } from '../identity/keys.ts'
import { WarrenNode, type WarrenNodeStartOptions } from '../node/warren-node.ts'
import { validateRelayConfig } from '../relay/server/config.ts'
import { type Relay, startRelay } from '../relay/server/relay-node.ts'

export interface DhtTestnetOptions {
  nodes: number
  /** Relays (default 2); node i uses relay i % relays. */
  relays?: number
  /** Nodes 0 … servers-1 run as DHT servers too (default 0: only the relays are servers). */
  servers?: number
  services?: Record<number, ConfigInput['services']>
  /** Extra `discovery` settings for every node. */
  discovery?: NonNullable<ConfigInput['discovery']>
  /** Nodes started at once (default 10). */
  batch?: number
  log?: WarrenNodeStartOptions['log']
}

export interface DhtTestnet {
  relays: Relay[]
  /** Node i; a stopped node's slot holds the stopped instance until {@link DhtTestnet.restart}. */
  nodes: WarrenNode[]
  keys: PrivateKey[]
  /** The dialable address of relay i (with /p2p/<id>). */
  relayAddr(i: number): string
  /** Resolves once every running node has published its record with its relay address (or rejects after `timeoutMs`). */
  waitPublished(timeoutMs?: number, only?: number[]): Promise<void>
  /** Stops node i and starts it again with the same key on a new port, with relay `relay` (default: the next one). */
  restart(i: number, relay?: number): Promise<WarrenNode>
  stop(): Promise<void>
}

export async function createDhtTestnet(opts: DhtTestnetOptions): Promise<DhtTestnet> {
  const relays: Relay[] = []
  const nodes: WarrenNode[] = []
  const keys: PrivateKey[] = []
  const nRelays = opts.relays ?? 2
  const relayAddr = (i: number): string => relays[i]!.addrs.find((a) => a.includes('/tcp/'))!
  const start = async (i: number, relay: number): Promise<WarrenNode> => {
    const input: ConfigInput = {
      listen: ['/ip4/127.0.0.1/tcp/0'],
      services: opts.services?.[i] ?? {},
      relays: [relayAddr(relay)],
      // every node of the testnet connects from 127.0.0.1: the per-IP budget for strangers would refuse the 17th
      limits: { maxStrangerConnectionsPerIp: 1_000 },
      discovery: {
        privateAddresses: true,
        mdns: false,
        ...(i < (opts.servers ?? 0) ? { dhtMode: 'server' as const } : {}),
        ...opts.discovery,
      },
    }
    const startOpts: WarrenNodeStartOptions = {
      privateKey: keys[i]!,
      config: validateConfig(input, `dht testnet node ${i} config`),
      preset: 'test',
      accessListen: false,
    }
    if (opts.log !== undefined) startOpts.log = opts.log
    return WarrenNode.start(startOpts)
  }
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(nodes.map((n) => n.stop()))
    await Promise.allSettled(relays.map((r) => r.stop()))
  }
  try {
    for (let r = 0; r < nRelays; r++) {
      const config = validateRelayConfig({
        listen: ['/ip4/127.0.0.1/tcp/0'],
        stun: false,
        discovery: { privateAddresses: true, bootstrap: relays.map((_, j) => relayAddr(j)) },
        routing: { host: '127.0.0.1', port: 0 },
        // every node of the testnet reserves from 127.0.0.1
        limits: { maxReservationsPerIp: 1_000 },
      })
      relays.push(await startRelay({ privateKey: await generateNodeKey(), config }))
    }
    for (let i = 0; i < opts.nodes; i++) keys.push(await generateNodeKey())
    const batch = opts.batch ?? 10
    for (let i = 0; i < opts.nodes; i += batch) {
      const ids = Array.from({ length: Math.min(batch, opts.nodes - i) }, (_, k) => i + k)
      nodes.push(...(await Promise.all(ids.map((k) => start(k, k % nRelays)))))
    }
  } catch (err) {
    await stopAll()
    throw err
  }
  return {
    relays,
    nodes,
    keys,
    relayAddr,
    waitPublished: async (timeoutMs = 20_000, only) => {
      const deadline = Date.now() + timeoutMs
      const which = only ?? nodes.map((_, i) => i)
      for (;;) {
        // published, with the circuit address of its relay (the first publish may come before the reservation)
        const waiting = which.filter(
          (i) => !(nodes[i]!.discovery?.publisher?.status().addrs.some((a) => a.includes('/p2p-circuit')) ?? false),
        )
        if (waiting.length === 0) return
        if (Date.now() > deadline) {
          const why = nodes[waiting[0]!]!.discovery?.publisher?.status().lastError ?? 'no attempt yet'
          throw new WarrenError('ERR_TIMEOUT', `${waiting.length} node(s) did not publish within ${timeoutMs} ms`, {
            hint: `Node ${waiting[0]}: ${why}.`,
            details: { waiting },
          })
        }
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    restart: async (i, relay) => {
      await nodes[i]!.stop()
      nodes[i] = await start(i, relay ?? (i + 1) % nRelays)
      return nodes[i]!
    },
    stop: stopAll,
  }
}
