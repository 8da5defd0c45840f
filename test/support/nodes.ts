/** In-process relays and nodes for the relay, node and discovery tests: real libp2p nodes on 127.0.0.1, no mocks. */
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { validateConfig } from '../../src/config/load.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'
import type { PresetName } from '../../src/p2p/presets.ts'
import { type RelayConfigInput, validateRelayConfig } from '../../src/relay/server/config.ts'
import { type Relay, startRelay } from '../../src/relay/server/relay-node.ts'

export interface TestRelay extends Relay {
  /** Log lines (`level message`). */
  lines: string[]
}

/** A relay on 127.0.0.1 (TCP port 0, STUN on 127.0.0.1:0) with the given settings on top. */
export async function startTestRelay(config: RelayConfigInput = {}): Promise<TestRelay> {
  const lines: string[] = []
  const relay = await startRelay({
    privateKey: await generateNodeKey(),
    config: validateRelayConfig({ listen: ['/ip4/127.0.0.1/tcp/0'], stun: { host: '127.0.0.1', port: 0 }, ...config }),
    log: (level, message) => lines.push(`${level} ${message}`),
  })
  return Object.assign(relay, { lines })
}

export interface NodeKey {
  key: PrivateKey
  id: string
}

export async function nodeKey(): Promise<NodeKey> {
  const key = await generateNodeKey()
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

/**
 * A node on the test preset. By default it listens nowhere, so the only way to reach it is through its relay (the
 * tests would otherwise connect directly over loopback).
 */
export async function startNode(
  opts: { key?: NodeKey; config?: ConfigInput; listen?: string[]; lines?: string[]; preset?: PresetName } = {},
): Promise<WarrenNode> {
  return WarrenNode.start({
    privateKey: (opts.key ?? (await nodeKey())).key,
    // relay tests measure relayed paths: no direct-path upgrade (tested in test/lab)
    config: validateConfig({ traversal: { enabled: false }, ...opts.config }),
    listen: opts.listen ?? [],
    preset: opts.preset ?? 'test',
    accessListen: false,
    log: (level, message) => opts.lines?.push(`${level} ${message}`),
  })
}
