/**
 * One measured run of two Warren nodes behind two NATs in the lab (the NAT matrix), with two `warren relay` processes
 * on the public segment: node B (behind router rb) serves a hash service and keeps a home relay; node A (behind ra)
 * sends bytes to it by B's ticket. Returns what A saw (answer, checksum, path, upgrade, round trips) and, per
 * transfer, the routers' counters and the CPU time of every process, so a test can tell a direct path (bytes router ↔
 * router) from a relayed one (bytes through a relay host), and the lab can compare both paths in the same run
 * (`compareBytes`: a second transfer forced onto the relayed connection, which stays open after the upgrade). The
 * nodes run test/relay/fixtures/lab-node.ts. For a pair kept alive across tests and disturbed between them, see
 * lab-pair.ts.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import { type Counter, createLab, type Lab, type NatKind } from '../../src/testing/natlab/index.ts'
import { type LineChannel, type LineMessage, lineChannel } from '../../src/testing/natlab/lines.ts'
import { cpuSecondsOf } from '../../src/testing/natlab/proc-cpu.ts'
import { WARREN_BIN } from './cli.ts'

const NODE_SCRIPT = resolve('test/relay/fixtures/lab-node.ts')
export const RELAY_HOSTS = ['relay', 'relay2'] as const

/** Which connection a transfer takes: the one new streams take (`best`), or the relayed one, forced. */
export type LegPath = 'best' | 'relay'

/** One transfer of the run, with the routers' counters and the processes' CPU time around it alone. */
export interface LabPairLeg {
  over: LegPath
  /** A's report: answer, sha256, sent, ms, path (and for `best`, Warren's path report after the transfer). */
  result: LineMessage
  bytes: number
  /** B's SHA-256 equals A's, and B counted every byte. */
  correct: boolean
  mibps: number
  /** Bytes a router counter moved during this transfer. */
  seen(router: 'ra' | 'rb', counter: string): number
  /** Bytes that went router ↔ router directly, both routers, both directions. */
  directBytes: number
  /** Bytes A's router sent to each relay host. */
  viaRelay: Record<string, number>
  /**
   * The path by both witnesses: `direct` when A reports a direct path and ≥ `bytes` went router ↔ router; `relayed`
   * when A reports a relay and ≥ `bytes` went from A's router to a relay host; undefined when they disagree.
   */
  proven?: 'direct' | 'relayed'
  /** The relay host that carried it (most bytes from A's router), for relayed legs. */
  relayHost?: string
  /** CPU seconds each process used during the transfer: the relay hosts, `a` and `b`. */
  cpuS: Record<string, number>
}

export interface LabPairRun {
  /** The transfer on the path new streams take, with the upgrade outcome and time to direct (A's `settled`). */
  result: LineMessage
  /** A's report once the upgrade settled: upgrade, toDirectMs, path, rtt samples. */
  settled: LineMessage
  /** Round trips (ms, ping protocol) taken in turns over the direct and the relayed connection after settling. */
  rtt: { direct?: number[]; relayed?: number[] }
  /** Every transfer, in the order sent; the `best` one is `main`. */
  legs: LabPairLeg[]
  main: LabPairLeg
  relays: { host: string; id: string }[]
  /** B's home relay. */
  home: { host: string; id: string }
  /** Bytes a router counter moved during the main transfer. */
  seen(router: 'ra' | 'rb', counter: string): number
  /** Bytes that went router ↔ router directly during the main transfer, both routers, both directions. */
  directBytes: number
  /** stderr of every process, by host. */
  logs: Record<string, string[]>
}

function channel(child: ChildProcess, name: string, stderr: string[]): LineChannel {
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  return lineChannel(child.stdout!, child.stdin!, name)
}

/** The next `type` message from `chan`; its `error` message or a time-out throws, with `stderr` as it is by then. */
async function expect(
  chan: LineChannel,
  type: string,
  timeoutMs: number,
  stderr: string[] | (() => string[]),
): Promise<LineMessage> {
  const text = (): string => (typeof stderr === 'function' ? stderr() : stderr).join('')
  const got = await chan.next([type, 'error'], timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n${text()}`)
  })
  if (got.type === 'error') throw new Error(`${String(got.message)}\n${text()}`)
  return got
}

const delta = (before: Record<string, Counter>, after: Record<string, Counter>, name: string): number =>
  (after[name]?.bytes ?? 0) - (before[name]?.bytes ?? 0)

type Snapshot = { ra: Record<string, Counter>; rb: Record<string, Counter>; cpu: Record<string, number> }

/** Builds the lab, runs the transfers from A to B, tears everything down. */
export async function runLabPair(opts: {
  natA: NatKind
  natB: NatKind
  bytes: number
  /** Let the direct-path upgrade settle for up to this long before sending (undefined: send at once). */
  waitDirectMs?: number
  /** Round trips per path after settling (default 20). */
  pings?: number
  /** When the path went direct, also send this many bytes over the relayed connection in the same run. */
  compareBytes?: number
  /** Send the relayed comparison before the main transfer (default after). */
  relayFirst?: boolean
  /**
   * When the path went direct: after the main transfer, this many rounds of a relayed then a best-path transfer of
   * `bytes` each, so both paths alternate in the same lab (direct, relayed, direct, …); all of them are in `legs`.
   */
  alternate?: number
  /** Runs once the lab stands, before any process (say a port mapper on a router); its result runs at teardown. */
  setup?: (lab: Lab) => Promise<() => Promise<void>>
}): Promise<LabPairRun> {
  const homes: string[] = []
  const lab = await createLab({ natA: opts.natA, natB: opts.natB, publicHosts: [...RELAY_HOSTS] })
  let teardown: (() => Promise<void>) | undefined
  try {
    teardown = await opts.setup?.(lab)
    const logs: Record<string, string[]> = {}
    const pids: Record<string, number | undefined> = {}
    // B is on both relays' allow list (unlimited circuits); A is not, and needs not be: limits follow B's reservation
    const bKey = await generateNodeKey()
    const keyDir = await mkdtemp(join(tmpdir(), 'warren-lab-node-'))
    homes.push(keyDir)
    const bKeyFile = join(keyDir, 'key')
    await saveNodeKey(bKeyFile, bKey)
    const bId = peerIdFromPrivateKey(bKey).toString()

    const relays = await Promise.all(
      RELAY_HOSTS.map(async (host) => {
        const home = await mkdtemp(join(tmpdir(), 'warren-lab-relay-'))
        homes.push(home)
        logs[host] = []
        const args = ['--home', home, 'relay', '--json', '--listen', '/ip4/0.0.0.0/tcp/4001', '--allow', bId]
        const child = lab.spawnNode(host, WARREN_BIN, args)
        pids[host] = child.pid // `ip netns exec` execs node: the same process
        const chan = channel(child, `relay on ${host}`, logs[host])
        const ready = await expect(chan, 'text', 45_000, logs[host])
        const id = (JSON.parse(String(ready.text)) as { id: string }).id
        return { host, id, addr: `/ip4/${lab.address(host)}/tcp/4001/p2p/${id}` }
      }),
    )
    const relayAddrs = relays.map((r) => r.addr)

    logs.b = []
    const bChild = lab.spawnNode('b', NODE_SCRIPT, ['serve', bKeyFile, ...relayAddrs])
    pids.b = bChild.pid
    const b = channel(bChild, 'node b', logs.b)
    const ready = await expect(b, 'ready', 45_000, logs.b)
    const home = relays.find((r) => r.id === (ready.relay as { home: string }).home)
    if (home === undefined) throw new Error(`B has no home relay: ${JSON.stringify(ready.relay)}`)

    logs.a = []
    const aChild = lab.spawnNode('a', NODE_SCRIPT, ['send', ...relayAddrs])
    pids.a = aChild.pid
    const a = channel(aChild, 'node a', logs.a)
    a.send({ type: 'send', ticket: String(ready.ticket), waitDirectMs: opts.waitDirectMs, pings: opts.pings ?? 20 })
    // A's failures come with B's log too: the far end often knows why a path or a stream went
    const both = (): string[] => [...(logs.a ?? []), '--- b ---\n', ...(logs.b ?? [])]
    const settled = await expect(a, 'settled', 60_000, both)
    const snapshot = async (): Promise<Snapshot> => {
      const [ra, rb, cpu] = await Promise.all([lab.counters('ra'), lab.counters('rb'), cpuSecondsOf(pids)])
      return { ra, rb, cpu }
    }
    const runLeg = async (over: LegPath, bytes: number): Promise<LabPairLeg> => {
      const before = await snapshot()
      a.send({ type: 'go', over, bytes })
      const result = await expect(a, 'leg', 90_000, both)
      const after = await snapshot()
      return legOf(over, bytes, result, before, after, relays)
    }
    const compare = (settled.path as { kind?: string } | undefined)?.kind === 'direct' && (opts.compareBytes ?? 0) > 0
    const legs: LabPairLeg[] = []
    if (compare && opts.relayFirst === true) legs.push(await runLeg('relay', opts.compareBytes!))
    const main = await runLeg('best', opts.bytes)
    legs.push(main)
    if (compare && opts.relayFirst !== true) legs.push(await runLeg('relay', opts.compareBytes!))
    const direct = (settled.path as { kind?: string } | undefined)?.kind === 'direct'
    for (let i = 0; direct && i < (opts.alternate ?? 0); i++) {
      legs.push(await runLeg('relay', opts.bytes))
      legs.push(await runLeg('best', opts.bytes))
    }
    a.send({ type: 'go', over: 'end' })
    a.send({ type: 'finish' })
    b.send({ type: 'finish' })
    const { upgrade, toDirectMs } = settled
    return {
      result: { ...main.result, upgrade, toDirectMs },
      settled,
      rtt: settled.rtt as LabPairRun['rtt'],
      legs,
      main,
      relays,
      home,
      seen: main.seen,
      directBytes: main.directBytes,
      logs,
    }
  } finally {
    await teardown?.().catch(() => undefined)
    await lab.close()
    await Promise.all(homes.map((h) => rm(h, { recursive: true, force: true })))
  }
}

function legOf(
  over: LegPath,
  bytes: number,
  result: LineMessage,
  before: Snapshot,
  after: Snapshot,
  relays: { host: string }[],
): LabPairLeg {
  const seen = (r: 'ra' | 'rb', name: string): number => delta(before[r], after[r], name)
  const directBytes = seen('ra', 'out_peer') + seen('ra', 'in_peer') + seen('rb', 'out_peer') + seen('rb', 'in_peer')
  const viaRelay = Object.fromEntries(relays.map((r) => [r.host, seen('ra', `out_${r.host}`)]))
  const relayHost = Object.entries(viaRelay).sort((x, y) => y[1] - x[1])[0]?.[0]
  const kind = (result.path as { kind?: string } | undefined)?.kind
  const proven =
    kind === 'direct' && directBytes >= bytes
      ? 'direct'
      : kind === 'relay' && relayHost !== undefined && viaRelay[relayHost]! >= bytes
        ? 'relayed'
        : undefined
  const cpuS = Object.fromEntries(Object.keys(after.cpu).map((k) => [k, after.cpu[k]! - before.cpu[k]!]))
  return {
    over,
    result,
    bytes,
    correct: result.answer === `${bytes} ${String(result.sha256)}`,
    mibps: bytes / 1048576 / (Number(result.ms) / 1000),
    seen,
    directBytes,
    viaRelay,
    ...(proven === undefined ? {} : { proven }),
    ...(proven === 'relayed' ? { relayHost } : {}),
    cpuS,
  }
}
