/**
 * `node bench/relay.ts`: what a relay (`warren relay`, a real process) costs, on loopback with real processes.
 *
 * - Relayed traffic: node A listens nowhere and holds a reservation on the relay; node B forwards a port to a service
 *   exposed on A, so every byte crosses the relay (traversal off on both, so the path stays relayed). `--mib` up and
 *   down `--reps` times, each transfer checked by sha256; the relay's CPU time (user + system, /proc/<pid>/stat)
 *   before and after gives relay CPU-seconds per relayed Gbit (bytes counted once, as the application sees them).
 *   `--variants tuned,untuned,libp2p-pipe` runs it with the relay under the daemon's V8 settings (bin/warren.js, the
 *   default), without them (WARREN_NODE_TUNED=1 skips the re-exec), and with js-libp2p's own pipe carrying the
 *   circuits (WARREN_BENCH_LIBP2P_PIPE=1) instead of Warren's (src/relay/server/splice.ts), in one run;
 *   `default-heap` runs the relay without its heap compaction; `parked` waits until the relay has parked node A's
 *   idle connection, so that the circuit wakes it and every byte crosses a connection rebuilt from its kept keys.
 * - Idle reservations: light clients (bench/relay-reserver.ts: bare js-libp2p nodes, one generated key and one TCP
 *   connection per reservation, up to 1000 per process) reserve in steps of `--step` up to `--reservations`; the
 *   relay's PSS (/proc/<pid>/smaps_rollup) `--settle-ms` after each step gives the bytes per reservation as the
 *   least-squares slope over the points with reservations, extrapolated to 10,000 along it. The point before the
 *   first step is not on that line: the relay has not compacted its heap yet (it does once its connection count
 *   has moved and settled), so it holds its start-up garbage, and a slope through it comes out flatter than the
 *   cost of a reservation; it is reported apart (`slopeFromStartBytes`). Each point also says how many connections
 *   the relay had parked (src/relay/server/parked-link.ts); `--no-park` runs the relay without parking.
 *
 * Targets (issue "faster than an OpenSSH tunnel"): <= 1 relay CPU-second per relayed Gbit; <= 10 KiB per idle
 * reservation. Writes bench/results/<YYYY-MM-DD>-relay.json.
 *
 *   node bench/relay.ts [--mib 256] [--reps 3] [--reservations 3000] [--step 500] [--variants tuned,untuned]
 *     [--no-throughput] [--no-reservations] [--settle-ms 20000] [--identify] [--no-park] [--profile dir]
 *     [--out file.json]
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { hashServer, patternHash, transfer } from './hash-xfer.ts'
import { helpIfAsked } from './help.ts'
import { Child } from './proc.ts'
import { formatTable, MiB, median } from './stats.ts'
import { warren } from './warren-pair.ts'

const WARREN = fileURLToPath(new URL('../bin/warren.js', import.meta.url))
const execFileAsync = promisify(execFile)
const TARGETS = { cpuSecPerGbit: 1, bytesPerReservation: 10 * 1024 }
/** Keys one light-client process holds at most. */
const PER_CLIENT = 1_000

/**
 * `tuned`: the relay as `warren relay` runs; `untuned`: without the daemon's V8 settings; `libp2p-pipe`: tuned, with
 * js-libp2p's own pipe carrying the circuits instead of Warren's splice (src/relay/server/splice.ts); `default-heap`:
 * tuned but without the relay's heap compaction (WARREN_BENCH_RELAY_NO_COMPACT=1, src/relay/server/heap-compact.ts).
 */
export type RelayVariant = 'tuned' | 'untuned' | 'libp2p-pipe' | 'default-heap' | 'parked'
const VARIANTS: readonly RelayVariant[] = ['tuned', 'untuned', 'libp2p-pipe', 'default-heap', 'parked']

export interface RelayBenchOptions {
  mib: number
  reps: number
  reservations: number
  step: number
  variants: RelayVariant[]
  throughput: boolean
  idle: boolean
  profile?: string
  /** More NODE_OPTIONS for the relay process (e.g. `--heapsnapshot-signal=SIGUSR2`). */
  relayNodeOptions?: string
  /** Keep the relay and its reservations this long after the last step (to inspect it, e.g. a heap snapshot). */
  holdMs?: number
  /** Node options for the relay process that NODE_OPTIONS does not take (V8 flags such as `--optimize-for-size`). */
  relayExecArgv?: string[]
  /** The light clients also run identify and ping (as Warren nodes do), so the relay stores what identify tells. */
  reserverIdentify?: boolean
  /** Wait after each step of the idle-reservation series before the relay's PSS is read, ms (default 20000). */
  settleMs?: number
  /** More environment for the relay process of the idle-reservation series (bench/relay-heap.ts's probe). */
  relayEnv?: NodeJS.ProcessEnv
  /** Called after each point of the idle-reservation series, with the reservations held and the relay's pid. */
  onPoint?: (held: number, pid: number) => Promise<void>
  log?: (msg: string) => void
}

export interface ThroughputResult {
  variant: RelayVariant
  upMiBs: number[]
  downMiBs: number[]
  /** Relay CPU seconds per relayed Gbit (10^9 bits of payload), per transfer. */
  relayCpuSecPerGbit: number[]
  medianCpuSecPerGbit: number
  /** The two nodes' CPU seconds per Gbit, for comparison. */
  nodesCpuSecPerGbit: number
  relayPssMiB: number
}

export interface ReservationResult {
  /** [reservations held over open connections, relay PSS in bytes]. */
  points: [number, number][]
  /** Least-squares slope over the points with reservations (from the first step on), bytes. */
  bytesPerReservation: number
  /** The same slope through the point before the first step too (before the relay's first compaction), bytes. */
  slopeFromStartBytes: number
  /** PSS the relay would hold with 10,000 reservations, extrapolated along the slope, MiB. */
  pssAt10kMiB: number
  failed: number
  /** Reservations whose connection closed by the end (the points count connected ones only). */
  lost: number
  /** Why the series stopped short of what was asked for, if it did. */
  note?: string
  /** Connections the relay had parked at each point (`totals.parked.now` of `warren relay status`). */
  parked: (number | null)[]
  /** Whether the relay parked idle connections (`--no-park` turns it off). */
  parking: boolean
}

export interface RelayBenchResult {
  throughput: ThroughputResult[]
  reservations?: ReservationResult
  targets: typeof TARGETS
}

/** PSS of a process in bytes. */
function pssOf(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
  return m === null ? Number.NaN : Number(m[1]) * 1024
}

interface RelayProc {
  child: Child
  id: string
  addr: string
  home: string
}

async function startRelayProc(
  dir: string,
  allow: string[],
  env: NodeJS.ProcessEnv,
  execArgv: string[] = [],
  reservations = 4_096,
): Promise<RelayProc> {
  const home = join(dir, 'relay')
  // every light client connects from 127.0.0.1: the per-IP cap is the total; the connection cap leaves room for them
  const limits = {
    maxReservations: reservations,
    maxReservationsPerIp: reservations,
    maxConnectionsPerIp: reservations + 64,
  }
  const maxConnections = Math.max(4_096, reservations + 256)
  await mkdir(home, { recursive: true })
  await writeFile(join(home, 'relay.json'), JSON.stringify({ stun: false, allow, limits, maxConnections }))
  const child = new Child(
    'warren relay',
    [...execArgv, WARREN, '--home', home, 'relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0'],
    { WARREN_LOG: 'warn', ...env },
  )
  const info = await child.next<{ id: string; addrs: string[] }>(60_000)
  return { child, id: info.id, addr: info.addrs.find((a) => a.includes('/tcp/'))!, home }
}

async function initHome(home: string, config: Record<string, unknown>): Promise<string> {
  await warren(home, ['init', '--listen', '/ip4/127.0.0.1/tcp/0'])
  const path = join(home, 'config.json')
  const base = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
  const traversal = { enabled: false, udpListen: ['/ip4/127.0.0.1/udp/0'] }
  await writeFile(path, JSON.stringify({ ...base, proxy: { enabled: false }, traversal, ...config }, null, 2))
  return (JSON.parse(await warren(home, ['id', '--json'])) as { id: string }).id
}

/** The connections the relay has parked now, from `warren relay status --json`; null when it does not answer. */
async function relayParked(home: string): Promise<number | null> {
  try {
    // the answer lists every reservation (~250 bytes each): more than execFile's default 1 MiB past ~4,000
    const { stdout } = await execFileAsync(process.execPath, [WARREN, '--home', home, 'relay', 'status', '--json'], {
      env: { ...process.env, WARREN_LOG: 'warn' },
      maxBuffer: 256 * 1024 * 1024,
      timeout: 60_000,
    })
    const st = JSON.parse(stdout) as { totals?: { parked?: { now?: number } } }
    return st.totals?.parked?.now ?? null
  } catch {
    return null
  }
}

async function eventuallyTrue(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function relayedThroughput(o: RelayBenchOptions, variant: RelayVariant): Promise<ThroughputResult> {
  const log = o.log ?? (() => {})
  const dir = await mkdtemp(join(tmpdir(), 'warren-relaybench-'))
  const children: Child[] = []
  const server = await hashServer()
  try {
    const homes = { a: join(dir, 'a'), b: join(dir, 'b') }
    const bId = await initHome(homes.b, {})
    const aId = await initHome(homes.a, { listen: [] })
    const nodeOptions = [
      ...(o.profile === undefined ? [] : [`--cpu-prof --cpu-prof-dir=${o.profile}`]),
      ...(o.relayNodeOptions === undefined ? [] : [o.relayNodeOptions]),
    ]
    const profEnv = nodeOptions.length === 0 ? {} : { NODE_OPTIONS: nodeOptions.join(' ') }
    const relay = await startRelayProc(
      dir,
      [aId, bId],
      {
        ...profEnv,
        ...(variant === 'untuned' ? { WARREN_NODE_TUNED: '1' } : {}),
        ...(variant === 'libp2p-pipe' ? { WARREN_BENCH_LIBP2P_PIPE: '1' } : {}),
        ...(variant === 'default-heap' ? { WARREN_BENCH_RELAY_NO_COMPACT: '1' } : {}),
      },
      [],
    )
    children.push(relay.child)
    for (const [home, extra] of [
      [homes.a, { relays: [relay.addr] }],
      [homes.b, {}],
    ] as const) {
      const path = join(home, 'config.json')
      const cfg = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
      await writeFile(path, JSON.stringify({ ...cfg, ...extra }, null, 2))
      const d = new Child(`warren up (${home})`, [WARREN, 'up'], { WARREN_HOME: home, WARREN_LOG: 'info' })
      children.push(d)
      await d.waitForStderr(/\bready\b/, 60_000)
    }
    await eventuallyTrue('node A holds a reservation on the relay', async () => {
      const st = JSON.parse(await warren(homes.a, ['status', '--json'])) as { relay?: { home?: string | null } }
      return st.relay?.home === relay.id
    })
    if (variant === 'parked') {
      // A's connection to the relay idle and parked first: the circuit wakes it, so every byte goes through a
      // connection rebuilt from its kept Noise keys (src/relay/server/parked-link.ts)
      await eventuallyTrue(
        "the relay parks node A's connection",
        async () => ((await relayParked(relay.home)) ?? 0) >= 1,
        60_000,
      )
    }
    const ticket = (JSON.parse(await warren(homes.a, ['id', '--json'])) as { ticket: string }).ticket
    const port = (server.address() as { port: number }).port
    await warren(homes.a, ['expose', 'hash', `/tcp/${port}`, '--allow', bId])
    const listen = (await warren(homes.b, ['forward', `${ticket}/hash`, '--listen', '127.0.0.1:0', '--no-check']))
      .split('\n')[0]!
      .trim()
    const fwd = Number(/:(\d+)$/.exec(listen)?.[1])
    const bytes = o.mib * MiB
    const expect = patternHash(bytes)
    const gbit = (bytes * 8) / 1e9
    // warm-up (JIT, windows), and a check that the bytes go through the relay
    const warm = 16 * MiB
    await transfer(fwd, 'U', warm, patternHash(warm))
    await transfer(fwd, 'D', warm, patternHash(warm))
    const st = JSON.parse(await warren(relay.home, ['--home', relay.home, 'relay', 'status', '--json'])) as {
      totals: { bytesRelayed: number; parked: { wakes: number } }
    }
    if (!(st.totals.bytesRelayed >= 2 * warm)) {
      throw new Error(`the relay carried ${st.totals.bytesRelayed} bytes of ${2 * warm}: the path is not relayed`)
    }
    if (variant === 'parked' && st.totals.parked.wakes < 1) throw new Error("node A's parked connection did not wake")
    log(`relay ${variant}: PSS ${(pssOf(relay.child.proc.pid!) / MiB).toFixed(0)} MiB after the warm-up`)
    const nodes = children.slice(1)
    const r: ThroughputResult = {
      variant,
      upMiBs: [],
      downMiBs: [],
      relayCpuSecPerGbit: [],
      medianCpuSecPerGbit: 0,
      nodesCpuSecPerGbit: 0,
      relayPssMiB: 0,
    }
    const nodeCpu: number[] = []
    for (let rep = 1; rep <= o.reps; rep++) {
      for (const mode of ['U', 'D'] as const) {
        const c0 = relay.child.cpuSeconds()
        const n0 = nodes.reduce((s, d) => s + d.cpuSeconds(), 0)
        const ms = await transfer(fwd, mode, bytes, expect)
        const cpu = relay.child.cpuSeconds() - c0
        nodeCpu.push((nodes.reduce((s, d) => s + d.cpuSeconds(), 0) - n0) / gbit)
        const mibs = Math.round(o.mib / (ms / 1000))
        ;(mode === 'U' ? r.upMiBs : r.downMiBs).push(mibs)
        r.relayCpuSecPerGbit.push(Number((cpu / gbit).toFixed(3)))
        log(
          `relay ${variant} rep ${rep} ${mode === 'U' ? 'up  ' : 'down'} ${mibs} MiB/s, relay ${(cpu / gbit).toFixed(2)} CPU-s/Gbit, PSS ${(pssOf(relay.child.proc.pid!) / MiB).toFixed(0)} MiB`,
        )
      }
    }
    r.medianCpuSecPerGbit = median(r.relayCpuSecPerGbit)
    r.nodesCpuSecPerGbit = Number(median(nodeCpu).toFixed(3))
    r.relayPssMiB = Number((pssOf(relay.child.proc.pid!) / MiB).toFixed(1))
    return r
  } finally {
    for (const c of children.reverse()) await c.stop()
    server.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** Least-squares line of y over x: slope and the value at x = 0. */
function line(points: [number, number][]): { slope: number; at0: number } {
  const n = points.length
  const mx = points.reduce((s, p) => s + p[0], 0) / n
  const my = points.reduce((s, p) => s + p[1], 0) / n
  const sxy = points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0)
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0)
  const slope = sxx === 0 ? Number.NaN : sxy / sxx
  return { slope, at0: my - slope * mx }
}

async function idleReservations(o: RelayBenchOptions): Promise<ReservationResult> {
  const log = o.log ?? (() => {})
  const dir = await mkdtemp(join(tmpdir(), 'warren-relaybench-'))
  const children: Child[] = []
  const here = fileURLToPath(new URL('relay-reserver.ts', import.meta.url))
  try {
    const relay = await startRelayProc(
      dir,
      [],
      {
        ...o.relayEnv,
        ...(o.relayNodeOptions === undefined ? {} : { NODE_OPTIONS: o.relayNodeOptions }),
      },
      o.relayExecArgv,
      o.reservations,
    )
    children.push(relay.child)
    const target = relay.addr.includes('/p2p/') ? relay.addr : `${relay.addr}/p2p/${relay.id}`
    const pid = relay.child.proc.pid!
    await new Promise((r) => setTimeout(r, 2_000)) // the relay's start-up settles (DHT, timers)
    const points: [number, number][] = [[0, pssOf(pid)]]
    const parked: (number | null)[] = [await relayParked(relay.home)]
    log(`reservations 0: relay PSS ${(points[0]![1] / MiB).toFixed(1)} MiB`)
    await o.onPoint?.(0, pid)
    let held = 0
    let open = 0
    let note: string | undefined
    /** Per light-client process: reservations it holds and attempts that failed, as it last said. */
    const clients: { child: Child; held: number; failed: number }[] = []
    const failedNow = (): number => clients.reduce((s, c) => s + c.failed, 0)
    while (held < o.reservations) {
      let want = Math.min(o.step, o.reservations - held)
      while (want > 0) {
        let client = clients.at(-1)
        if (client === undefined || client.held + client.failed >= PER_CLIENT) {
          const child = new Child(`reserver ${clients.length + 1}`, [
            here,
            target,
            ...(o.reserverIdentify === true ? ['identify'] : []),
          ])
          children.push(child)
          await child.next(30_000)
          client = { child, held: 0, failed: 0 }
          clients.push(client)
        }
        const n = Math.min(want, PER_CLIENT - client.held - client.failed)
        const res = await client.child.request<{ held: number; failed: number; lastError?: string }>(
          `reserve ${n}`,
          600_000,
        )
        const got = res.held - client.held
        client.held = res.held
        client.failed = res.failed
        held = clients.reduce((s, c) => s + c.held, 0)
        want -= n
        if (got < n) {
          note = `the relay took ${got} of ${n} reservations asked for at ${held - got}: ${res.lastError ?? 'no reason given'}`
          want = 0
        }
      }
      // idle: the relay compacts its heap and trims malloc once its connection count settles (at most every 15 s)
      await new Promise((r) => setTimeout(r, o.settleMs ?? 20_000))
      // a point counts the keys still connected: a connection lost since its reservation holds nothing on the relay
      const answers = await Promise.all(clients.map((c) => c.child.request<{ open: number }>('reserve 0', 60_000)))
      open = answers.reduce((sum, a) => sum + a.open, 0)
      points.push([open, pssOf(pid)])
      parked.push(await relayParked(relay.home))
      log(
        `reservations ${held}, ${open} still connected, ${parked.at(-1) ?? '?'} parked: relay PSS ${(points.at(-1)![1] / MiB).toFixed(1)} MiB`,
      )
      await o.onPoint?.(open, pid)
      if (note !== undefined) break
    }
    if (o.holdMs !== undefined) {
      log(`holding the relay (pid ${pid}) and its reservations for ${o.holdMs} ms`)
      await new Promise((r) => setTimeout(r, o.holdMs))
    }
    // with one step only, the line through the start is all there is
    const fit = line(points.length >= 3 ? points.slice(1) : points)
    return {
      points,
      bytesPerReservation: Math.round(fit.slope),
      slopeFromStartBytes: Math.round(line(points).slope),
      pssAt10kMiB: Number(((fit.at0 + fit.slope * 10_000) / MiB).toFixed(1)),
      failed: failedNow(),
      lost: held - open,
      ...(note === undefined ? {} : { note }),
      parked,
      parking: o.relayEnv?.WARREN_BENCH_RELAY_NO_PARK !== '1',
    }
  } finally {
    for (const c of children.reverse()) await c.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

export async function runRelayBench(o: RelayBenchOptions): Promise<RelayBenchResult> {
  const throughput: ThroughputResult[] = []
  if (o.throughput) for (const v of o.variants) throughput.push(await relayedThroughput(o, v))
  const result: RelayBenchResult = { throughput, targets: TARGETS }
  if (o.idle) result.reservations = await idleReservations(o)
  return result
}

export function relayTable(r: RelayBenchResult): string {
  const rows = [['relay', 'up MiB/s', 'down MiB/s', 'relay CPU-s/Gbit', 'nodes CPU-s/Gbit', 'relay PSS MiB', 'target']]
  for (const t of r.throughput) {
    rows.push([
      t.variant,
      String(median(t.upMiBs)),
      String(median(t.downMiBs)),
      `${t.medianCpuSecPerGbit.toFixed(2)} (${Math.min(...t.relayCpuSecPerGbit).toFixed(2)}-${Math.max(...t.relayCpuSecPerGbit).toFixed(2)})`,
      t.nodesCpuSecPerGbit.toFixed(2),
      String(t.relayPssMiB),
      t.medianCpuSecPerGbit <= TARGETS.cpuSecPerGbit ? 'met (<= 1)' : 'MISSED (<= 1)',
    ])
  }
  let out = formatTable(rows)
  const res = r.reservations
  if (res !== undefined) {
    const last = res.points.at(-1)!
    out +=
      `\nidle reservations: ${last[0]} held, relay PSS ${(res.points[0]![1] / MiB).toFixed(1)} → ${(last[1] / MiB).toFixed(1)} MiB; ` +
      `slope ${(res.bytesPerReservation / 1024).toFixed(1)} KiB per reservation from the first step on (target <= 10 KiB: ` +
      `${res.bytesPerReservation <= TARGETS.bytesPerReservation ? 'met' : 'MISSED'}; ` +
      `${(res.slopeFromStartBytes / 1024).toFixed(1)} through the start, before the relay's first compaction); ` +
      `10,000 extrapolated: ${res.pssAt10kMiB} MiB${res.lost > 0 ? `; ${res.lost} lost their connection` : ''}` +
      `${res.note === undefined ? '' : `\n  ${res.note}`}\n`
  }
  return out
}

/** Runs {@link runRelayBench}, prints its table and writes bench/results/<YYYY-MM-DD>-relay.json (or `out`). */
export async function runRelayBenchReport(o: RelayBenchOptions, out?: string, settings: unknown = {}): Promise<void> {
  const started = new Date()
  const result = await runRelayBench(o)
  process.stdout.write(`\n${relayTable(result)}`)
  const file =
    out ?? fileURLToPath(new URL(`results/${started.toISOString().slice(0, 10)}-relay.json`, import.meta.url))
  const meta = { date: started.toISOString(), cpus: cpus().length, loadavg: loadavg(), node: process.version }
  await writeFile(file, `${JSON.stringify({ ...meta, settings, ...result }, null, 2)}\n`)
  process.stdout.write(`wrote ${file}\n`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  helpIfAsked(import.meta.url)
  const { values: args } = parseArgs({
    options: {
      mib: { type: 'string', default: '256' },
      reps: { type: 'string', default: '3' },
      reservations: { type: 'string', default: '3000' },
      step: { type: 'string', default: '500' },
      variants: { type: 'string', default: 'tuned' },
      'no-throughput': { type: 'boolean', default: false },
      'no-reservations': { type: 'boolean', default: false },
      profile: { type: 'string' },
      'relay-node-options': { type: 'string' },
      'hold-ms': { type: 'string' },
      'settle-ms': { type: 'string', default: '20000' },
      'no-park': { type: 'boolean', default: false },
      identify: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  })
  const variants = args.variants.split(',').filter((v): v is RelayVariant => VARIANTS.includes(v as RelayVariant))
  await runRelayBenchReport(
    {
      mib: Number(args.mib),
      reps: Number(args.reps),
      reservations: Number(args.reservations),
      step: Number(args.step),
      variants,
      throughput: !args['no-throughput'],
      idle: !args['no-reservations'],
      ...(args.profile === undefined ? {} : { profile: args.profile }),
      ...(args['hold-ms'] === undefined ? {} : { holdMs: Number(args['hold-ms']) }),
      settleMs: Number(args['settle-ms']),
      reserverIdentify: args.identify,
      ...(args['no-park'] ? { relayEnv: { WARREN_BENCH_RELAY_NO_PARK: '1' } } : {}),
      ...(args['relay-node-options'] === undefined ? {} : { relayNodeOptions: args['relay-node-options'] }),
      log: (m) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`),
    },
    args.out,
    args,
  )
}
