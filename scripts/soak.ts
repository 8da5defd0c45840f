/**
 * `npm run soak`: a fault-injection soak. Moves `--gib` GiB (default 10) through two real daemons on loopback over
 * `warren forward`, SOCKS5 on the access port, the HTTP gateway and a spawned `warren connect`, both directions, with
 * fast, 40 MiB/s, 10 MiB/s and bursty readers, while faults hit on a schedule: the target service's connections reset
 * mid-transfer, the serving daemon restarted (SIGTERM) or SIGKILLed and started again, the client killed mid-way.
 * Then, where the NAT lab can be built (root, iproute2, nftables, conntrack), a relayed pair (symmetric × symmetric)
 * whose relay is killed mid-transfer and restarted, and a direct pair (cone × cone) whose router's conntrack table is
 * flushed mid-transfer.
 *
 * Every transfer is judged by SHA-256 and by how it ended: whole, ended with a visible error (which side, which
 * message), stalled, or silently truncated or corrupted (a clean end with the wrong bytes). Exits 1 when any transfer
 * was silently truncated or corrupted or stalled (or the soak itself failed). A TCP client is killed with a reset (a
 * FIN is a clean end to any proxy), and an upload the service saw end cleanly but short because the serving daemon was
 * SIGKILLed (its kernel's FIN) is counted apart. Prints a summary (or the JSON with `--json`) and writes
 * bench/results/<date>-soak.json.
 *
 *   npm run soak -- [--gib 10] [--faults 16] [--lanes 3] [--no-lab] [--lab-mib 256] [--max-minutes 40] [--json]
 *                   [--out file.json]
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { startSoakPair } from './soak/daemons.ts'
import { runLabPhase } from './soak/lab.ts'
import { runLoopback } from './soak/loopback.ts'
import { compact, errorGroups, perPath, type Recorded, recovery, table, totals } from './soak/report.ts'
import { startServers } from './soak/servers.ts'

const HELP = `usage: npm run soak -- [options]

  --gib <n>          GiB to move on loopback in total (default 10)
  --faults <n>       faults to inject on loopback, spread over the run (default 16: each kind on each path)
  --lanes <n>        transfers running at once besides the fault victims and probes (default 3)
  --no-lab           skip the NAT lab phase (it runs only as root with iproute2, nftables and conntrack)
  --lab-mib <n>      MiB per lab transfer (default 256)
  --max-minutes <n>  stop starting transfers after this long (default 40)
  --json             print the result as JSON instead of the summary
  --out <file>       where to write the JSON (default bench/results/<date>-soak.json)
  --help             this text

Exit status 1 when any transfer was silently truncated or corrupted, or stalled, or the soak itself failed;
130 when interrupted; 0 otherwise.`

const parse = () =>
  parseArgs({
    allowNegative: true,
    options: {
      gib: { type: 'string', default: '10' },
      faults: { type: 'string', default: '16' },
      lanes: { type: 'string', default: '3' },
      lab: { type: 'boolean', default: true },
      'lab-mib': { type: 'string', default: '256' },
      'max-minutes': { type: 'string', default: '40' },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  })
let values: ReturnType<typeof parse>['values']
try {
  values = parse().values
} catch (err) {
  console.error(`${(err as Error).message}\n\n${HELP}`)
  process.exit(2)
}
if (values.help) {
  console.log(HELP)
  process.exit(0)
}
const num = (name: string, v: string, min: number): number => {
  const n = Number(v)
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${name}: expected a number ≥ ${min}, got ${JSON.stringify(v)}\n\n${HELP}`)
    process.exit(2)
  }
  return n
}
const gib = num('gib', values.gib, 0.01)
const faultCount = Math.floor(num('faults', values.faults, 0))
const lanes = Math.floor(num('lanes', values.lanes, 1))
const labMib = num('lab-mib', values['lab-mib'], 1)
const deadline = Date.now() + num('max-minutes', values['max-minutes'], 1) * 60_000

const log = (line: string): void => {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)
}

// Everything to undo, newest first; run on every outcome, SIGINT included.
const cleanups: { name: string; run: () => Promise<void> }[] = []
let interrupted = false
const cleanUp = async (): Promise<void> => {
  for (const c of cleanups.splice(0).reverse()) {
    await c.run().catch((err: unknown) => log(`cleaning up ${c.name} failed: ${(err as Error).message}`))
  }
}
let interruptedAt = 0
process.on('SIGINT', () => {
  // the NAT lab's registry tears its namespaces down on SIGINT and raises it again at once: that is not a second one
  if (interrupted && Date.now() - interruptedAt < 2000) return
  if (interrupted) {
    log('second SIGINT: cleaning up now')
    void cleanUp().finally(() => process.exit(130))
    return
  }
  interrupted = true
  interruptedAt = Date.now()
  log('SIGINT: stopping the transfers, then cleaning up (again to hurry)')
  setTimeout(() => void cleanUp().finally(() => process.exit(130)), 90_000).unref()
})
process.on('SIGTERM', () => process.emit('SIGINT'))

const started = new Date()
const outcomes: Recorded[] = []
const result: Record<string, unknown> = {}
try {
  log(`loopback: ${gib} GiB over forward, SOCKS5, gateway and connect, ${faultCount} faults, ${lanes} lanes`)
  const servers = await startServers()
  cleanups.push({ name: 'servers', run: () => servers.close() })
  const pair = await startSoakPair(servers.tcpPort, servers.httpPort)
  cleanups.push({ name: 'daemons', run: () => pair.close() })
  const loop = await runLoopback(pair, servers, {
    bytes: gib * 2 ** 30,
    faults: faultCount,
    lanes,
    deadline,
    log,
    aborted: () => interrupted,
  })
  outcomes.push(...loop.outcomes.map((o) => ({ ...o, phase: 'loopback' })))
  const rss = pair.rss()
  await cleanUp()
  const loopTotals = totals(loop.outcomes)
  result.loopback = {
    ms: loop.ms,
    totals: loopTotals,
    perPath: perPath(loop.outcomes),
    errors: errorGroups(loop.outcomes),
    recovery: recovery(loop.faults),
    faults: loop.faults,
    peakRssMiB: rss.map((r) => ({ role: r.role, pid: r.pid, peakMiB: Math.round(r.peakKiB / 1024) })),
    transfers: loop.outcomes.map(compact),
    diagnostics: loop.diagnostics,
  }
  if (loop.broken !== undefined) throw new Error(`the loopback phase stopped early: ${loop.broken}`)
  log(`loopback done in ${Math.round(loop.ms / 1000)} s: ${loopTotals.gibMoved} GiB, ${loopTotals.silent} silent`)

  if (values.lab && !interrupted) {
    result.lab = await runLabPhase({
      bytes: labMib * 2 ** 20,
      log,
      aborted: () => interrupted,
      onCleanup: (name, run) => cleanups.push({ name, run }),
    })
    const lab = result.lab as { outcomes?: Recorded[]; transfers?: unknown[] }
    outcomes.push(...(lab.outcomes ?? []))
    lab.transfers = (lab.outcomes ?? []).map(compact)
    delete lab.outcomes
    await cleanUp()
  } else result.lab = { skipped: values.lab ? 'interrupted' : '--no-lab' }
} catch (err) {
  result.error = (err as Error).stack ?? String(err)
  log(`failed: ${(err as Error).message}`)
} finally {
  await cleanUp()
}

const all = totals(outcomes)
const doc = {
  date: started.toISOString(),
  machine: { cpus: cpus().length, loadavg: loadavg().map((x) => Math.round(x * 100) / 100), node: process.version },
  settings: { gib, faults: faultCount, lanes, lab: values.lab, labMib },
  interrupted,
  totals: all,
  ...result,
}
const file = values.out ?? `bench/results/${started.toISOString().slice(0, 10)}-soak.json`
await mkdir(dirname(file), { recursive: true })
await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`)

if (values.json) process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
else process.stdout.write(`${summary(doc)}\nwrote ${file}\n`)
process.exit(all.silent > 0 || all.stalled > 0 || result.error !== undefined ? 1 : interrupted ? 130 : 0)

function summary(d: typeof doc & { loopback?: unknown; lab?: unknown; error?: unknown }): string {
  const t = d.totals
  const lines = [
    '',
    `moved ${t.gibMoved} GiB in ${t.transfers} transfers (+${t.probes} recovery probes, ${t.probesFailed} of them failed visibly)`,
    `  whole (SHA-256 equal): ${t.whole}`,
    `  ended with a visible error: ${t.visibleErrors} (${t.unexpectedErrors} outside any fault window)`,
    `  stalled (killed at the time limit): ${t.stalled}`,
    `  uploads cut short at the service by a SIGKILLed daemon's FIN (no process can prevent it): ${t.finOnKill}`,
    `  SILENTLY TRUNCATED OR CORRUPTED: ${t.silent}`,
  ]
  const lb = d.loopback as
    | {
        perPath: ReturnType<typeof perPath>
        errors: ReturnType<typeof errorGroups>
        recovery: ReturnType<typeof recovery>
        peakRssMiB: { role: string; pid: number; peakMiB: number }[]
      }
    | undefined
  const lab = d.lab as
    | {
        perPath?: ReturnType<typeof perPath>
        errors?: ReturnType<typeof errorGroups>
        recovery?: ReturnType<typeof recovery>
        failures?: string[]
      }
    | undefined
  const paths = [...(lb?.perPath ?? []), ...(lab?.perPath ?? [])]
  if (paths.length > 0)
    lines.push(
      '',
      table([
        ['path', 'dir', 'transfers', 'whole', 'MiB'],
        ...paths.map((p) => [p.path, p.dir, `${p.transfers}`, `${p.whole}`, `${p.mib}`]),
      ]),
    )
  const rec = [...(lb?.recovery ?? []), ...(lab?.recovery ?? [])]
  if (rec.length > 0)
    lines.push(
      '',
      'time to recover (from the fault until a new transfer on that path arrived whole):',
      table([
        ['fault', 'n', 'recovered', 'p50 ms', 'max ms'],
        ...rec.map((r) => [r.kind, `${r.faults}`, `${r.recovered}`, `${r.p50Ms ?? '-'}`, `${r.maxMs ?? '-'}`]),
      ]),
    )
  const errs = [...(lb?.errors ?? []), ...(lab?.errors ?? [])]
  if (errs.length > 0) {
    lines.push('', 'how transfers that were not whole ended (count, outside a fault window):')
    for (const e of errs.slice(0, 25))
      lines.push(`  ${e.count}× (${e.unexpected}) ${e.path} ${e.dir} [${e.side}] ${e.message}`)
  }
  if (lb !== undefined)
    lines.push(
      '',
      `peak RSS: ${['a', 'b']
        .map((role) => {
          const mib = lb.peakRssMiB.filter((r) => r.role === role).map((r) => r.peakMiB)
          return `daemon ${role} ${Math.max(0, ...mib)} MiB${mib.length > 1 ? ` (the highest of its ${mib.length} processes)` : ''}`
        })
        .join(', ')}`,
    )
  for (const f of lab?.failures ?? []) lines.push(`lab phase failed: ${f}`)
  const labSkip = (d.lab as { skipped?: string } | undefined)?.skipped
  if (labSkip !== undefined) lines.push(`lab phase skipped: ${labSkip}`)
  if (d.error !== undefined) lines.push('', `the soak itself failed: ${String(d.error)}`)
  return lines.join('\n')
}
