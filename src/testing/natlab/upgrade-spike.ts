/**
 * The direct-path upgrade protocol measured in the lab: `b` listens on a TCP port its router forwards, `a` connects over
 * TCP (standing in for the relayed connection), upgrades to a direct udx connection with `/warren/punch/1.0.0`, and sends
 * a checksummed bulk stream over it. The routers' UDP counters prove the bytes went router to router over UDP.
 *
 * @packageDocumentation
 */
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Lab } from './lab.ts'
import { type LineChannel, type LineMessage, lineChannel, reap } from './lines.ts'
import type { Counter } from './nft.ts'
import { STUN_PORT } from './udx-spike.ts'

/** TCP port router rb forwards to host b in labs used with {@link runUpgradeSpike}. */
export const SIGNAL_PORT = 4001

export interface UpgradeSpikeResult {
  natA: string
  natB: string
  direct: boolean
  plan?: string
  /** From the start of the upgrade (STUN included) to an upgraded direct connection, on the initiator. */
  upgradeMs?: number
  path?: string
  checksumOk: boolean
  mibps?: number
  /** UDP bytes router ra forwarded to/from router rb. */
  peerUdpBytes: number
  /** Whether the signalling (TCP) connection was still open after the upgrade. */
  signallingOpen: boolean
  failure?: string
}

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url))

function udpBytes(after: Record<string, Counter>, before: Record<string, Counter>): number {
  return ['out_peer_udp', 'in_peer_udp'].reduce((n, k) => n + (after[k]?.bytes ?? 0) - (before[k]?.bytes ?? 0), 0)
}

/** One run. The lab needs two public hosts running STUN and `forwardTcpToB: [SIGNAL_PORT]`. */
export async function runUpgradeSpike(
  lab: Lab,
  options: { bytes?: number; yamuxWindow?: number } = {},
): Promise<UpgradeSpikeResult> {
  const bytes = options.bytes ?? 64 * 1024 * 1024
  const publicHosts = Object.keys(lab.hosts).filter((h) => !['sw', 'ra', 'rb', 'a', 'b'].includes(h))
  const stun = publicHosts.slice(0, 2).map((h) => ({ host: lab.address(h), port: STUN_PORT }))
  const config = { type: 'config', stun, bytes, tcpPort: SIGNAL_PORT, yamuxWindow: options.yamuxWindow ?? 0 }
  const children = (['a', 'b'] as const).map((host) => lab.spawnNode(host, here('./upgrade-peer.ts')))
  try {
    return await upgradeRun(lab, children, config, bytes)
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
): Promise<UpgradeSpikeResult> {
  const [pa, pb] = children.map((child, i) =>
    lineChannel(child.stdout!, child.stdin!, `upgrade peer ${i === 0 ? 'a' : 'b'}`),
  ) as [LineChannel, LineChannel]
  pa.send({ ...config, role: 'send' })
  pb.send({ ...config, role: 'recv' })
  const [, rb] = await Promise.all([pa.next('ready', 15_000), pb.next('ready', 15_000)])
  const before = await lab.counters('ra')
  pa.send({ type: 'peer', addr: `/ip4/${lab.address('rb')}/tcp/${SIGNAL_PORT}/p2p/${rb.peerId}` })
  const outcome = await Promise.race([pa.next('upgraded', 30_000), pa.next('failed', 30_000), pa.next('error', 30_000)])
  const result: UpgradeSpikeResult = {
    natA: lab.natA,
    natB: lab.natB,
    direct: false,
    checksumOk: false,
    peerUdpBytes: 0,
    signallingOpen: outcome.signalling === 'open',
  }
  if (outcome.type !== 'upgraded') {
    result.failure = String(outcome.message)
  } else {
    result.plan = String(outcome.plan)
    result.upgradeMs = Number(outcome.ms)
    result.path = String(outcome.path)
    const [sent, received] = await Promise.all([pa.next('sent', 120_000), pb.next('received', 120_000)])
    result.checksumOk = sent.sha256 === received.sha256 && received.bytes === bytes
    result.mibps = Number(received.mibps)
  }
  for (const p of [pa, pb]) p.send({ type: 'finish' })
  result.peerUdpBytes = udpBytes(await lab.counters('ra'), before)
  result.direct = result.checksumOk && result.peerUdpBytes >= bytes
  return result
}
