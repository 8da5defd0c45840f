/**
 * The loopback phase: lanes of transfers over the four paths (both directions, four reader paces) through two real
 * daemons until `bytes` have moved, and faults on a schedule, each followed by probes on the faulted path until a
 * transfer succeeds again (the recovery time).
 */
import { MiB } from '../../test/support/transfer.ts'
import {
  type Ctx,
  type Dir,
  type Live,
  type Outcome,
  PATHS,
  type PathName,
  type Spec,
  startTransfer,
} from './clients.ts'
import type { SoakPair } from './daemons.ts'
import type { SoakServers } from './servers.ts'

export const FAULT_KINDS = ['service-kill', 'restart-a', 'kill-a', 'client-kill'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export interface FaultRecord {
  kind: FaultKind
  path: PathName
  dir: Dir
  /** ms since the phase started. */
  atMs: number
  victim: number
  victimVerdict?: string
  /** From the fault until a new transfer on the same path arrived whole; absent if none did within the bound. */
  recoveryMs?: number
  probes: number
  skipped?: string
}

export interface LoopbackResult {
  outcomes: (Outcome & { probe?: boolean; duringFault?: boolean })[]
  /** For each silent or stalled transfer: the daemons' last warnings, to tell what happened. */
  diagnostics: { id: number; a: string[]; b: string[] }[]
  /** Set when the phase stopped before moving its bytes (see `broken` in runLoopback). */
  broken?: string
  faults: FaultRecord[]
  ms: number
}

export interface LoopbackOptions {
  bytes: number
  faults: number
  lanes: number
  deadline: number
  log(line: string): void
  /** Set when the run is being interrupted: stop starting transfers. */
  aborted(): boolean
}

const PACES = ['fast', '40mibps', '10mibps', 'bursts'] as const
const SIZE: Record<string, number> = { fast: 256 * MiB, '40mibps': 128 * MiB, '10mibps': 32 * MiB, bursts: 64 * MiB }
/** The slowest rate (bytes/s) a transfer may average before it counts as stalled, plus 60 s. */
const FLOOR: Record<string, number> = { fast: 8 * MiB, '40mibps': 8 * MiB, '10mibps': 4 * MiB, bursts: 4 * MiB }
const limitOf = (pace: string, size: number): number => Math.round((size / FLOOR[pace]!) * 1000) + 60_000
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export async function runLoopback(pair: SoakPair, servers: SoakServers, o: LoopbackOptions): Promise<LoopbackResult> {
  const ctx: Ctx = { access: pair.access, forwardPort: pair.forwardPort, bHome: pair.bHome.dir, servers }
  const t0 = Date.now()
  const outcomes: LoopbackResult['outcomes'] = []
  const diagnostics: LoopbackResult['diagnostics'] = []
  const faults: FaultRecord[] = []
  const windows: { from: number; to: number }[] = []
  const live = new Set<Live>()
  /** When daemon a was SIGKILLed. */
  const kills: number[] = []
  let nextId = 1
  let moved = 0
  let n = 0
  /** Why the phase stopped early: daemon a did not come back, or nothing has arrived whole for a long while. */
  let broken: string | undefined
  let failedInARow = 0
  const over = (): boolean => o.aborted() || Date.now() > o.deadline || broken !== undefined

  const run = async (spec: Omit<Spec, 'id' | 'seed' | 'limitMs'>, probe = false): Promise<Outcome> => {
    const id = nextId++
    const full: Spec = { ...spec, id, seed: 1 + (id % 5), limitMs: limitOf(spec.pace, spec.size) }
    const l = startTransfer(ctx, full)
    live.add(l)
    const out = await l.done
    live.delete(l)
    // the kernel of a SIGKILLed daemon closed its connection to the service with a FIN: see clients.ts
    const killedDuring = kills.some((k) => out.startedAt <= k && out.endedAt >= k)
    if (out.verdict === 'silent' && out.spec.dir === 'up' && out.client !== undefined && killedDuring) {
      out.verdict = 'fin-on-kill'
      out.server = `${out.server} (daemon a was SIGKILLed: its kernel's FIN)`
    }
    moved += out.bytes
    outcomes.push(probe ? { ...out, probe } : out)
    if (out.verdict === 'silent' || out.verdict === 'stalled') {
      const warnings = (text: string): string[] =>
        text
          .split('\n')
          .filter((l) => / (warn|error) /.test(l))
          .slice(-15)
      diagnostics.push({ id, a: warnings(pair.a.stderr), b: warnings(pair.b.stderr) })
    }
    if (out.verdict !== 'whole' && (out.verdict !== 'error' || !probe))
      o.log(`#${id} ${spec.path} ${spec.dir} ${spec.pace}: ${out.verdict} ${out.client ?? ''} ${out.server ?? ''}`)
    return out
  }

  const inFlight = (): number => [...live].reduce((s, l) => s + l.spec.size, 0)
  const lane = async (): Promise<void> => {
    while (!over() && moved + inFlight() < o.bytes) {
      const i = n++
      const pace = PACES[Math.floor(i / 8) % PACES.length]!
      const spec = {
        path: PATHS[i % PATHS.length]!,
        dir: (Math.floor(i / 4) % 2 === 0 ? 'down' : 'up') as Dir,
        pace,
        size: SIZE[pace]!,
      }
      const out = await run(spec)
      failedInARow = out.verdict === 'whole' ? 0 : failedInARow + 1
      if (failedInARow >= 200) broken ??= '200 transfers in a row did not arrive whole'
      if (out.verdict !== 'whole') await sleep(250) // a path that is down fails fast: no busy loop
    }
  }

  const inject = async (f: number): Promise<void> => {
    const kind = FAULT_KINDS[f % FAULT_KINDS.length]!
    const path = PATHS[(f + Math.floor(f / FAULT_KINDS.length)) % PATHS.length]!
    const dir: Dir = Math.floor(f / FAULT_KINDS.length) % 2 === 0 ? 'down' : 'up'
    const rec: FaultRecord = { kind, path, dir, atMs: 0, victim: nextId, probes: 0 }
    faults.push(rec)
    const victim = run({ path, dir, pace: '10mibps', size: 64 * MiB })
    const v = [...live].find((l) => l.spec.id === rec.victim)!
    for (let i = 0; i < 300 && v.progress < 4 * MiB && live.has(v); i++) await sleep(100)
    if (!live.has(v) || v.progress < 4 * MiB) {
      rec.skipped = `the victim ${live.has(v) ? 'made no progress' : 'ended'} before the fault`
      rec.victimVerdict = (await victim).verdict
      return
    }
    const at = Date.now()
    rec.atMs = at - t0
    o.log(`fault ${f + 1}/${o.faults}: ${kind} on ${path} ${dir} (victim #${rec.victim} at ${v.progress} bytes)`)
    let restart: Promise<void> = Promise.resolve()
    if (kind === 'service-kill') servers.kill(path === 'gateway' ? 'http' : 'tcp')
    else if (kind === 'client-kill') v.kill('killed by the soak (client-kill fault)')
    else {
      if (kind === 'kill-a') kills.push(at)
      restart = pair.restartA(kind === 'restart-a' ? 'SIGTERM' : 'SIGKILL')
    }
    restart.catch((err: unknown) => {
      broken ??= `restarting daemon a failed: ${(err as Error).message.split('\n')[0]}`
      o.log(broken)
    })
    // probes on the faulted path until one arrives whole (bounded: 120 s, or the run's end)
    while (Date.now() - at < 120_000 && !o.aborted()) {
      rec.probes++
      const p = await run({ path, dir: 'down', pace: 'fast', size: MiB }, true)
      if (p.verdict === 'whole') {
        rec.recoveryMs = p.endedAt - at
        break
      }
      await sleep(250)
    }
    await restart.catch(() => {})
    rec.victimVerdict = (await victim).verdict
    windows.push({ from: at, to: Date.now() + 1000 })
    o.log(
      `  recovered in ${rec.recoveryMs ?? '-'} ms after ${rec.probes} probe(s); victim: ${rec.victimVerdict}` +
        ` (${outcomes.find((x) => x.spec.id === rec.victim)?.client ?? ''})`,
    )
  }

  const faultLoop = async (): Promise<void> => {
    for (let f = 0; f < o.faults; f++) {
      const due = ((f + 1) * o.bytes) / (o.faults + 1)
      // bytes of the transfers in flight count too: a fault is due by what moved, not by what finished
      const movedNow = (): number => moved + [...live].reduce((sum, l) => sum + l.progress, 0)
      while (movedNow() < due && !over() && !lanesDone) await sleep(200)
      if (over()) return
      await inject(f)
    }
  }

  const abortWatch = setInterval(() => {
    if (o.aborted()) for (const l of live) l.kill('the run was interrupted')
  }, 250)
  let lanesDone = false
  const lanes = Promise.all(Array.from({ length: o.lanes }, lane)).then(() => {
    lanesDone = true
  })
  const faultsDone = faultLoop()
  await lanes
  // faults still due once the lanes are done run back to back, so the schedule is always complete
  await faultsDone
  clearInterval(abortWatch)
  for (const l of live) l.kill('the run was interrupted')
  await Promise.all([...live].map((l) => l.done))
  for (const out of outcomes) {
    if (windows.some((w) => out.startedAt <= w.to && out.endedAt >= w.from)) out.duringFault = true
  }
  return { outcomes, faults, diagnostics, ms: Date.now() - t0, ...(broken === undefined ? {} : { broken }) }
}
