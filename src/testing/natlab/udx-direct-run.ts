/**
 * Runs a raw udx-native direct path in a lab: STUN responders on two public hosts, one peer process behind each
 * router, the parent relaying their signalling, then a checksummed bulk transfer a → b over the punched path. Whether the
 * bytes really went router to router is read from the routers' nft counters, not taken from the peers' word.
 *
 * @packageDocumentation
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type { Lab } from './lab.ts'
import { type LineChannel, type LineMessage, lineChannel, reap } from './lines.ts'
import type { Counter } from './nft.ts'

export const STUN_PORT = 3478

export interface SpikeOptions {
  /** `udx`: raw udx-native stream (default); `libp2p`: libp2p node over the udx transport with Noise and Yamux. */
  mode?: 'udx' | 'libp2p'
  /** Bytes to send from a to b (default 64 MiB). */
  bytes?: number
  birthdaySockets?: number
  maxProbes?: number
  punchTimeoutMs?: number
}

export interface SpikeResult {
  natA: string
  natB: string
  direct: boolean
  plan?: string
  /** Parent's wall clock from handing each peer the other's address to both reporting a direct path. */
  timeToDirectMs?: number
  /** libp2p mode: from the start of punching to an upgraded (Noise + Yamux) connection, slower side. */
  timeToConnectionMs?: number
  /** Time of the two STUN bindings (max of the two peers). */
  stunMs: number
  /** Probes sent by a and by b. */
  probes?: [number, number]
  bytes: number
  checksumOk: boolean
  mibps?: number
  /** Bytes router ra forwarded to/from router rb (the direct path), during punching and transfer. */
  peerBytes: number
  /** Bytes router ra forwarded to/from the public hosts (relay/STUN), same window. */
  relayBytes: number
  failure?: string
}

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url))

function delta(after: Record<string, Counter>, before: Record<string, Counter>, names: string[]): number {
  return names.reduce((n, k) => n + (after[k]?.bytes ?? 0) - (before[k]?.bytes ?? 0), 0)
}

/** Starts a STUN responder on a public lab host and waits until it listens. */
export async function startLabStun(lab: Lab, host: string): Promise<void> {
  const child = lab.spawnNode(host, here('./stun-host.ts'), [String(STUN_PORT)])
  await lineChannel(child.stdout!, child.stdin!, `stun on ${host}`).next('listening', 10_000)
}

/** One run. The lab needs at least two public hosts (the second STUN server detects symmetric NATs). */
export async function runUdxSpike(lab: Lab, options: SpikeOptions = {}): Promise<SpikeResult> {
  const bytes = options.bytes ?? 64 * 1024 * 1024
  const publicHosts = Object.keys(lab.hosts).filter((h) => !['sw', 'ra', 'rb', 'a', 'b'].includes(h))
  const stun = publicHosts.slice(0, 2).map((h) => ({ host: lab.address(h), port: STUN_PORT }))
  const config = {
    type: 'config',
    stun,
    bytes,
    birthdaySockets: options.birthdaySockets ?? 256,
    maxProbes: options.maxProbes ?? 768,
    punchTimeoutMs: options.punchTimeoutMs ?? 10_000,
    token: randomBytes(16).toString('hex'),
  }
  const script = options.mode === 'libp2p' ? './libp2p-peer.ts' : './udx-peer.ts'
  const children = (['a', 'b'] as const).map((host) => lab.spawnNode(host, here(script)))
  try {
    return await directRun(lab, children, config, bytes, publicHosts, options)
  } finally {
    await Promise.all(children.map((c) => reap(c)))
  }
}

async function directRun(
  lab: Lab,
  children: ChildProcess[],
  config: LineMessage,
  bytes: number,
  publicHosts: string[],
  options: SpikeOptions,
): Promise<SpikeResult> {
  const peers: LineChannel[] = children.map((child, i) => {
    const host = i === 0 ? 'a' : 'b'
    const chan = lineChannel(child.stdout!, child.stdin!, `udx peer ${host}`)
    child.stderr!.on(
      'data',
      (d: Buffer) => chan.log.length < 50 && (chan.log as LineMessage[]).push({ type: 'stderr', text: String(d) }),
    )
    return chan
  })
  const [pa, pb] = peers as [LineChannel, LineChannel]
  pa.send({ ...config, role: 'send' })
  pb.send({ ...config, role: 'recv' })
  const [ra, rb] = await Promise.all([pa.next('ready', 15_000), pb.next('ready', 15_000)])
  const before = await lab.counters('ra')
  const started = performance.now()
  pa.send({ ...rb, type: 'peer' })
  pb.send({ ...ra, type: 'peer' })
  // Birthday: whichever side is hard says 'armed' once its mappings are open; then the easy side may probe.
  if (ra.nat !== rb.nat) {
    const [hard, easy] = ra.nat === 'hard' ? [pa, pb] : [pb, pa]
    await hard.next('armed', 15_000)
    easy.send({ type: 'go' })
  }
  const wait = (chan: LineChannel): Promise<LineMessage> => chan.next(['direct', 'failed', 'error'], 30_000)
  const [da, db] = await Promise.all([wait(pa), wait(pb)])
  const result: SpikeResult = {
    natA: lab.natA,
    natB: lab.natB,
    direct: false,
    stunMs: Math.max(Number(ra.stunMs), Number(rb.stunMs)),
    bytes,
    checksumOk: false,
    peerBytes: 0,
    relayBytes: 0,
  }
  if (da.type !== 'direct' || db.type !== 'direct') {
    result.failure = String(da.type !== 'direct' ? da.message : db.message)
    result.plan = String(da.plan ?? db.plan)
  } else {
    result.timeToDirectMs = performance.now() - started
    result.plan = String(da.plan)
    result.probes = [Number(da.probes), Number(db.probes)]
    if (options.mode === 'libp2p') {
      const [ca, cb] = await Promise.all([pa.next('connected', 20_000), pb.next('connected', 20_000)])
      result.timeToConnectionMs = Math.max(Number(ca.ms), Number(cb.ms))
    }
    const [sent, received] = await Promise.all([pa.next('sent', 120_000), pb.next('received', 120_000)])
    if (options.mode === 'libp2p') for (const p of peers) p.send({ type: 'finish' })
    result.checksumOk = sent.sha256 === received.sha256 && received.bytes === bytes
    result.mibps = Number(received.mibps)
  }
  const after = await lab.counters('ra')
  result.peerBytes = delta(after, before, ['out_peer', 'in_peer'])
  result.relayBytes = delta(
    after,
    before,
    publicHosts.flatMap((h) => [`out_${h}`, `in_${h}`]),
  )
  result.direct = result.checksumOk && result.peerBytes >= bytes
  return result
}
