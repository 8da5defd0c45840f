/**
 * The NAT lab phase of the soak, on the fault tests' setting (test/lab/fixtures/fault-pair.ts: Warren nodes A and B
 * behind two NATs, `warren relay` processes on the public segment, B's target services in a process of their own, A's
 * port forwards to them): rounds of an upload and a download at once, alternating clean rounds and faulted ones.
 *
 * - relayed (symmetric × symmetric, two relays): B's home relay SIGKILLed mid-transfer, then started again;
 * - direct (cone × cone, after the direct path is up): a router's whole conntrack table flushed mid-transfer.
 *
 * Each direction is judged like the loopback transfers (whole, visible error, stalled, silent); the recovery time is
 * from the fault until a new connection carried 1 MiB intact.
 */
import { labSupport, type NatKind, type RouterName } from '../../src/testing/natlab/index.ts'
import { createFaultPair, type FaultPair, type RelaySpec } from '../../test/lab/fixtures/fault-pair.ts'
import { type DirectionOutcome, underFault } from '../../test/lab/fixtures/fault-run.ts'
import { flushConntrack, killProcess } from '../../test/lab/fixtures/faults.ts'
import { MiB } from '../../test/support/transfer.ts'
import type { Verdict } from './clients.ts'
import { errorGroups, perPath, type Recorded, recovery, totals } from './report.ts'
import { digestOf } from './servers.ts'

export interface LabPhaseOptions {
  bytes: number
  log(line: string): void
  aborted(): boolean
  onCleanup(name: string, run: () => Promise<void>): void
}

type Round = 'clean' | 'relay-kill' | `conntrack-flush ${RouterName}`

interface Setting {
  name: 'relayed' | 'direct'
  natA: NatKind
  natB: NatKind
  relays: RelaySpec[]
  rounds: Round[]
}

const SETTINGS: Setting[] = [
  {
    name: 'relayed',
    natA: 'symmetric',
    natB: 'symmetric',
    relays: [
      { host: 'relay', allowB: true },
      { host: 'relay2', allowB: true },
    ],
    rounds: ['clean', 'relay-kill', 'clean', 'relay-kill', 'clean'],
  },
  {
    name: 'direct',
    natA: 'cone',
    natB: 'cone',
    relays: [{ host: 'relay', allowB: true }],
    rounds: ['clean', 'conntrack-flush ra', 'clean', 'conntrack-flush rb', 'clean'],
  },
]

export interface LabFault {
  setting: string
  kind: string
  /** The relay host killed or the router flushed. */
  where?: string
  /** The path Warren reported to B before the fault (`direct`, `relayed`), for the direct setting. */
  pathBefore?: string
  recoveryMs?: number
  failedProbes: string[]
  skipped?: string
}

export interface LabResult {
  skipped?: string
  outcomes?: Recorded[]
  faults?: LabFault[]
  totals?: ReturnType<typeof totals>
  perPath?: ReturnType<typeof perPath>
  errors?: ReturnType<typeof errorGroups>
  recovery?: ReturnType<typeof recovery>
  failures?: string[]
}

/** One direction of a round, judged as the loopback transfers are. */
function judge(setting: string, d: DirectionOutcome, startedAt: number, faulted: boolean): Recorded {
  const base = { spec: { path: setting, dir: d.kind === 'upload' ? 'up' : 'down', size: d.size }, startedAt }
  const rec = (verdict: Verdict, bytes: number, client?: string, server?: string): Recorded => ({
    ...base,
    verdict,
    bytes,
    endedAt: d.client.at,
    duringFault: faulted,
    phase: 'lab',
    ...(client === undefined ? {} : { client }),
    ...(server === undefined ? {} : { server }),
  })
  const svc = d.service
  if (d.kind === 'download') {
    const whole = d.client.bytes === d.size && d.client.sha256 === digestOf(d.size, 1)
    if (d.client.ending === 'end')
      return whole ? rec('whole', d.client.bytes) : rec('silent', d.client.bytes, `clean end at ${d.client.bytes}`)
    if (d.client.ending.startsWith('deadline')) return rec('stalled', d.client.bytes, d.client.ending, svc?.ending)
    return rec('error', d.client.bytes, d.client.ending, svc?.ending ?? 'reported nothing')
  }
  const want = `${d.size} ${digestOf(d.size, 2)}`
  const serviceWhole = svc?.ending === 'end' && `${svc.bytes} ${svc.sha256}` === want
  if (serviceWhole && d.client.ending === 'end' && d.client.answer === want) return rec('whole', svc!.bytes)
  if (svc?.ending === 'end' && !serviceWhole)
    return rec('silent', svc.bytes, d.client.ending, `clean end at ${svc.bytes}/${d.size} bytes`)
  if (d.client.ending.startsWith('deadline')) return rec('stalled', svc?.bytes ?? 0, d.client.ending, svc?.ending)
  if (svc === undefined) return rec('stalled', 0, d.client.ending, 'saw no end (hangs, or was never told)')
  const client = d.client.ending === 'end' ? `clean end, answer ${JSON.stringify(d.client.answer)}` : d.client.ending
  return rec('error', svc.bytes, client, svc.ending)
}

async function runSetting(s: Setting, o: LabPhaseOptions, out: Recorded[], faults: LabFault[]): Promise<void> {
  o.log(`lab ${s.name}: building ${s.natA} × ${s.natB} with ${s.relays.length} relay(s)`)
  let closed: Promise<void> | undefined
  let pair: FaultPair | undefined
  const close = (): Promise<void> => {
    closed ??= pair?.close() ?? Promise.resolve()
    return closed
  }
  o.onCleanup(`lab ${s.name}`, close)
  try {
    pair = await createFaultPair({ natA: s.natA, natB: s.natB, relays: s.relays, downloadBytes: o.bytes })
    const p = pair
    const markAt = Math.min(16 * MiB, Math.floor(o.bytes / 4))
    const deadlineMs = 60_000 + Math.round((o.bytes / (2 * MiB)) * 1000)
    for (const [i, round] of s.rounds.entries()) {
      if (o.aborted()) return
      const rec: LabFault = { setting: s.name, kind: round.split(' ')[0]!, failedProbes: [] }
      if (s.name === 'direct') {
        const w = await p.a.ask({ op: 'wait', id: p.bId, kind: 'direct', timeoutMs: 20_000 }, 'waited', 25_000)
        rec.pathBefore = (w.path as { kind?: string } | undefined)?.kind ?? 'none'
      }
      let restarting: Promise<void> = Promise.resolve()
      let fault = async (): Promise<void> => {}
      if (round === 'relay-kill') {
        const home = await p.home()
        rec.where = home.host
        fault = async () => {
          killProcess(home.proc.child)
          // started again at once: the recovery is measured from the kill, whichever relay B turns to
          restarting = home.restart()
          restarting.catch(() => {})
        }
      } else if (round.startsWith('conntrack-flush')) {
        const router = round.split(' ')[1] as RouterName
        rec.where = router
        fault = () => flushConntrack(p.lab, router)
      }
      const startedAt = Date.now()
      const r = await underFault(p, {
        upload: o.bytes,
        download: o.bytes,
        markAt,
        deadlineMs,
        fault,
      })
      await restarting
      const faulted = round !== 'clean'
      const judged = [r.upload!, r.download!].map((d) => judge(s.name, d, startedAt, faulted))
      out.push(...judged)
      if (faulted) {
        rec.failedProbes = r.failedProbes
        if (r.recoverMs !== undefined) rec.recoveryMs = r.recoverMs
        faults.push(rec)
      }
      o.log(
        `lab ${s.name} round ${i + 1}/${s.rounds.length} ${rec.kind}${rec.where ? ` ${rec.where}` : ''}${rec.pathBefore ? ` on ${rec.pathBefore}` : ''}: ` +
          judged.map((j) => `${j.spec.dir} ${j.verdict}${j.client ? ` (${j.client})` : ''}`).join(', ') +
          (faulted ? `; recovered in ${r.recoverMs ?? '-'} ms` : ''),
      )
    }
  } finally {
    await close()
  }
}

export async function runLabPhase(o: LabPhaseOptions): Promise<LabResult> {
  const support = await labSupport()
  if (!support.ok) return { skipped: support.reason }
  const outcomes: Recorded[] = []
  const faults: LabFault[] = []
  const failures: string[] = []
  for (const s of SETTINGS) {
    if (o.aborted()) break
    try {
      await runSetting(s, o, outcomes, faults)
    } catch (err) {
      const msg = `${s.name}: ${(err as Error).message.split('\n')[0]}`
      failures.push(msg)
      o.log(`lab ${msg}`)
    }
  }
  return {
    outcomes,
    faults,
    totals: totals(outcomes),
    perPath: perPath(outcomes),
    errors: errorGroups(outcomes),
    recovery: recovery(faults.map((f) => ({ ...f, kind: `lab ${f.setting} ${f.kind}` }))),
    ...(failures.length > 0 ? { failures } : {}),
  }
}
