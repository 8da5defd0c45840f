/**
 * The direct-path upgrade protocol measured in the lab. Signalling goes either over circuit relay v2 through a Warren
 * relay on the public segment ({@link startLabRelay}), or over TCP through a router port forward to `b`. Host `a`
 * upgrades to a direct udx connection with `/warren/punch/1.0.0` and sends a checksummed bulk stream over it, or over
 * the signalling connection when no direct path is found. The routers' counters tell which path the bytes took.
 *
 * @packageDocumentation
 */
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Lab } from './lab.ts'
import { type LineChannel, type LineMessage, lineChannel, reap } from './lines.ts'
import type { Counter } from './nft.ts'
import { STUN_PORT } from './udx-direct-run.ts'

/** TCP port router rb forwards to host b in labs used with TCP signalling. */
export const SIGNAL_PORT = 4001

export interface UpgradeSpikeResult {
  natA: string
  natB: string
  /** The bulk stream went over a direct udx connection: checksum matched and ra↔rb carried the bytes over UDP. */
  direct: boolean
  /** The bulk stream went over the relayed connection: checksum matched and ra↔relay carried the bytes. */
  relayed: boolean
  plan?: string
  /** From the start of the upgrade (STUN included) to an upgraded direct connection, on the initiator. */
  upgradeMs?: number
  /** remoteAddr of the connection the bulk stream used. */
  path?: string
  checksumOk: boolean
  mibps?: number
  /** UDP bytes router ra forwarded to/from router rb. */
  peerUdpBytes: number
  /** Bytes router ra forwarded to/from the first public host (the relay). */
  relayBytes: number
  /** Whether the signalling connection was still open after the upgrade. */
  signallingOpen: boolean
  failure?: string
}

export interface UpgradeSpikeOptions {
  bytes?: number
  yamuxWindow?: number
  /** Relay multiaddr (with /p2p/) from {@link startLabRelay}; without it, TCP through `forwardTcpToB: [SIGNAL_PORT]`. */
  relayAddr?: string
  /** Birthday probe budget of the easy side (default 768); tests lower it to force the relay fallback. */
  maxProbes?: number
}

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url))

function delta(after: Record<string, Counter>, before: Record<string, Counter>, names: string[]): number {
  return names.reduce((n, k) => n + (after[k]?.bytes ?? 0) - (before[k]?.bytes ?? 0), 0)
}

/** Starts a Warren relay (circuit relay v2 on TCP 4001, STUN on 3478) on a public host; returns its lab address. */
export async function startLabRelay(lab: Lab, host: string): Promise<string> {
  const child = lab.spawnNode(host, here('./relay-host.ts'))
  const msg = await lineChannel(child.stdout!, child.stdin!, `relay on ${host}`).next('listening', 20_000)
  const addr = (msg.addrs as string[]).find((a) => a.startsWith(`/ip4/${lab.address(host)}/tcp/`))
  if (addr === undefined) throw new Error(`relay on ${host} does not listen on ${lab.address(host)}`)
  return addr
}

/** One run. The lab needs two public hosts running STUN (the first may be the relay, whose STUN is on the same port). */
export async function runUpgradeSpike(lab: Lab, options: UpgradeSpikeOptions = {}): Promise<UpgradeSpikeResult> {
  const bytes = options.bytes ?? 64 * 1024 * 1024
  const publicHosts = Object.keys(lab.hosts).filter((h) => !['sw', 'ra', 'rb', 'a', 'b'].includes(h))
  const stun = publicHosts.slice(0, 2).map((h) => ({ host: lab.address(h), port: STUN_PORT }))
  const config = {
    type: 'config',
    stun,
    bytes,
    signal: options.relayAddr === undefined ? 'tcp' : 'relay',
    tcpPort: SIGNAL_PORT,
    relayAddr: options.relayAddr ?? '',
    yamuxWindow: options.yamuxWindow ?? 0,
    maxProbes: options.maxProbes ?? 0,
  }
  const children = (['a', 'b'] as const).map((host) => lab.spawnNode(host, here('./upgrade-peer.ts')))
  try {
    return await upgradeRun(lab, children, config, bytes, publicHosts[0]!)
  } finally {
    // Both peers exit after 'finish'; make sure of it so the next run can bind the same port.
    await Promise.all(children.map((c) => reap(c)))
  }
}

async function upgradeRun(
  lab: Lab,
  children: ChildProcess[],
  config: LineMessage,
  bytes: number,
  relayHost: string,
): Promise<UpgradeSpikeResult> {
  const [pa, pb] = children.map((child, i) =>
    lineChannel(child.stdout!, child.stdin!, `upgrade peer ${i === 0 ? 'a' : 'b'}`),
  ) as [LineChannel, LineChannel]
  pa.send({ ...config, role: 'send' })
  pb.send({ ...config, role: 'recv' })
  const [, rb] = await Promise.all([pa.next('ready', 15_000), pb.next('ready', 20_000)])
  const before = await lab.counters('ra')
  const addr =
    config.signal === 'relay'
      ? `${config.relayAddr}/p2p-circuit/p2p/${rb.peerId}`
      : `/ip4/${lab.address('rb')}/tcp/${SIGNAL_PORT}/p2p/${rb.peerId}`
  pa.send({ type: 'peer', addr })
  const outcome = await pa.next(['upgraded', 'failed', 'error'], 30_000)
  const result: UpgradeSpikeResult = {
    natA: lab.natA,
    natB: lab.natB,
    direct: false,
    relayed: false,
    checksumOk: false,
    peerUdpBytes: 0,
    relayBytes: 0,
    signallingOpen: false,
  }
  if (outcome.type === 'error') throw new Error(`upgrade peer a: ${String(outcome.message)}`)
  if (outcome.type === 'upgraded') {
    result.plan = String(outcome.plan)
    result.upgradeMs = Number(outcome.ms)
  } else {
    result.failure = String(outcome.message)
  }
  const [sent, received] = await Promise.all([pa.next('sent', 180_000), pb.next('received', 180_000)])
  result.checksumOk = sent.sha256 === received.sha256 && received.bytes === bytes
  if (!result.checksumOk) {
    result.failure = `${result.failure ?? ''} (sent ${sent.bytes} bytes ${sent.sha256}, received ${received.bytes} ${received.sha256})`
  }
  result.mibps = Number(received.mibps)
  result.path = String(sent.path)
  result.signallingOpen = sent.signalling === 'open'
  for (const p of [pa, pb]) p.send({ type: 'finish' })
  const after = await lab.counters('ra')
  result.peerUdpBytes = delta(after, before, ['out_peer_udp', 'in_peer_udp'])
  result.relayBytes = delta(after, before, [`out_${relayHost}`, `in_${relayHost}`])
  result.direct = result.checksumOk && outcome.type === 'upgraded' && result.peerUdpBytes >= bytes
  result.relayed = result.checksumOk && result.path.includes('/p2p-circuit') && result.relayBytes >= bytes
  return result
}
