/**
 * `npm run bench`: raw TCP, a stock js-libp2p stream (no Warren wrappers), a raw js-libp2p stream as Warren assembles
 * it (`createNode`: write coalescing, Yamux batching, Noise key caching), and a full Warren forward, side by side in one
 * run, all on loopback with real processes. "vs libp2p" compares with the raw stream as Warren assembles it.
 *
 * - Throughput: MiB/s for one `--mib` transfer (default 512) up and down, `--reps` times each (median shown),
 *   the modes interleaved so a noisy neighbour hits them alike.
 * - Set-up: p50/p99 over `--connections` (default 1000) new connections through an established peer
 *   connection: from the TCP connect (or the new libp2p stream) to the first byte echoed by an echo server.
 *
 * Writes bench/results/<YYYY-MM-DD>.json and prints a table with the ratios and the targets it checks: a forward at
 * >= 0.7x the raw libp2p stream each way, >= 1.5 Gbit/s each way, and a forward's set-up p50 <= 2 ms.
 *
 *   npm run bench -- --mib 512 --reps 5 --connections 1000 [--no-forward] [--no-http] [--no-discovery] [--no-browser] [--no-relay] [--out file.json]
 *     [--profile dir]
 *
 * Then the HTTP benchmark (bench/http.ts: requests/s and p50/p99 through the gateway and the HTTP proxy
 * versus direct), unless `--no-http`; run it alone with `node bench/http.ts`. Then the discovery benchmark
 * (bench/discovery.ts: lookup latency by id, cold and cached, and publish cost in a 50-node testnet), unless
 * `--no-discovery`; run it alone with `node bench/discovery.ts`.
 *
 * Then the transparent-mode benchmark (bench/transparent.ts: set-up p50/p99 and throughput through transparent mode,
 * SOCKS5 and a forward in a network namespace; needs root and nft, else skipped saying why), unless `--no-transparent`.
 *
 * Then the browser benchmark (bench/browser.ts: bundle size, page load → first byte p50 over 20 loads, throughput
 * browser → relay → node both ways; needs Chromium, else skipped saying why), unless `--no-browser`.
 *
 * Then the relay benchmark (bench/relay.ts: relay CPU-seconds per relayed Gbit through a real `warren relay`, and
 * relay memory per idle reservation), unless `--no-relay`; run it alone with `node bench/relay.ts`.
 *
 * `--profile <dir>` writes V8 CPU profiles of the two daemons and the libp2p peers there (see bench/profile.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { browserBenchSkip, runBrowserBenchReport } from './browser.ts'
import { DISCOVERY_DEFAULTS, runDiscoveryBench } from './discovery.ts'
import { helpIfAsked } from './help.ts'
import { defaultLoadgen, runHttpBench } from './http.ts'
import { Child } from './proc.ts'
import { runRelayBenchReport } from './relay.ts'
import { formatTable, gbitPerSec, type LatencySummary, MiB, median, mibPerSec, summarize } from './stats.ts'
import { runTransparentBench, transparentBenchSkip } from './transparent.ts'
import { type Endpoint, startPair, type WarrenPair } from './warren-pair.ts'
import { tcpDownload, tcpSetup, tcpUpload } from './xfer.ts'

helpIfAsked(import.meta.url)
const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '512' },
    reps: { type: 'string', default: '5' },
    connections: { type: 'string', default: '1000' },
    'no-forward': { type: 'boolean', default: false },
    /** Skip the HTTP gateway/proxy benchmark (bench/http.ts), which runs after the transfers. */
    'no-http': { type: 'boolean', default: false },
    /** Skip the discovery benchmark (bench/discovery.ts: lookups by id in a 50-node testnet). */
    'no-discovery': { type: 'boolean', default: false },
    /** Skip the transparent-mode benchmark (bench/transparent.ts). */
    'no-transparent': { type: 'boolean', default: false },
    /** Skip the browser benchmark (bench/browser.ts). */
    'no-browser': { type: 'boolean', default: false },
    /** Skip the relay benchmark (bench/relay.ts: relay CPU per relayed Gbit, memory per idle reservation). */
    'no-relay': { type: 'boolean', default: false },
    out: { type: 'string' },
    profile: { type: 'string' },
  },
})
const BYTES = Number(args.mib) * MiB
const REPS = Number(args.reps)
const CONNECTIONS = Number(args.connections)
const TRANSFER_TIMEOUT = 300_000
const SETUP_TIMEOUT = 300_000
const TARGETS = { forwardVsLibp2p: 0.7, forwardGbit: 1.5, setupP50Ms: 2 }

type Mode = 'tcp' | 'stock' | 'libp2p' | 'forward'
interface Path {
  up(bytes: number): Promise<number>
  down(bytes: number): Promise<number>
  setup(count: number): Promise<number[]>
  /** Processes whose CPU time counts for this path (besides the bench process itself). */
  procs: Child[]
}

interface ModeResult {
  upMiBs: number[]
  downMiBs: number[]
  upMedianMiBs: number
  downMedianMiBs: number
  upBestMiBs: number
  downBestMiBs: number
  upGbit: number
  /** CPU seconds per GiB moved (all processes on the path, the bench client included), median over reps. */
  cpuSecPerGiB: number
  setup: LatencySummary
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`)
}

function tcpPath(xfer: Endpoint, echo: Endpoint, procs: Child[]): Path {
  return {
    up: (b) => tcpUpload(xfer.host, xfer.port, b, TRANSFER_TIMEOUT),
    down: (b) => tcpDownload(xfer.host, xfer.port, b, TRANSFER_TIMEOUT),
    setup: (n) => tcpSetup(echo.host, echo.port, n, SETUP_TIMEOUT),
    procs,
  }
}

function libp2pPath(dialer: Child, listener: Child): Path {
  return {
    up: async (b) => (await dialer.request<{ ms: number }>(`up ${b}`, TRANSFER_TIMEOUT)).ms,
    down: async (b) => (await dialer.request<{ ms: number }>(`down ${b}`, TRANSFER_TIMEOUT)).ms,
    setup: async (n) => (await dialer.request<{ samples: number[] }>(`setup ${n}`, SETUP_TIMEOUT)).samples,
    procs: [dialer, listener],
  }
}

function cpuNow(procs: Child[]): number {
  const self = process.cpuUsage()
  return procs.reduce((sum, p) => sum + p.cpuSeconds(), (self.user + self.system) / 1e6)
}

async function main(): Promise<void> {
  const children: Child[] = []
  let pair: WarrenPair | undefined
  const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
  try {
    log(`starting: ${args.mib} MiB transfers × ${REPS}, ${CONNECTIONS} connections for set-up`)
    const servers = new Child('servers', [here('servers.ts')])
    children.push(servers)
    const ports = await servers.next<{ xfer: number; echo: number }>(30_000)
    const profEnv: NodeJS.ProcessEnv =
      args.profile === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${args.profile}` }
    const listener = new Child('libp2p listener', [here('libp2p-peer.ts'), 'listen'], profEnv)
    children.push(listener)
    const { addr } = await listener.next<{ addr: string }>(30_000)
    const dialer = new Child('libp2p dialer', [here('libp2p-peer.ts'), 'dial', addr], profEnv)
    children.push(dialer)
    await dialer.next(30_000)
    // stock js-libp2p (no Warren wrappers): the same stream without Warren's per-message workarounds, for the
    // forward-vs-stock ratio
    const stockEnv = { ...profEnv, WARREN_BENCH_STOCK: '1' }
    const stockListener = new Child('stock libp2p listener', [here('libp2p-peer.ts'), 'listen'], stockEnv)
    children.push(stockListener)
    const stockAddr = (await stockListener.next<{ addr: string }>(30_000)).addr
    const stockDialer = new Child('stock libp2p dialer', [here('libp2p-peer.ts'), 'dial', stockAddr], stockEnv)
    children.push(stockDialer)
    await stockDialer.next(30_000)

    const paths: Partial<Record<Mode, Path>> = {
      tcp: tcpPath({ host: '127.0.0.1', port: ports.xfer }, { host: '127.0.0.1', port: ports.echo }, [servers]),
      stock: libp2pPath(stockDialer, stockListener),
      libp2p: libp2pPath(dialer, listener),
    }
    if (!args['no-forward']) {
      log('starting two Warren daemons (warren init, up, expose, forward)')
      pair = await startPair({ xfer: ports.xfer, echo: ports.echo }, profEnv)
      paths.forward = tcpPath(pair.forwards.xfer!, pair.forwards.echo!, [servers, ...pair.daemons])
    }
    const modes = Object.keys(paths) as Mode[]

    // warm-up: JIT, Yamux windows, the peer connection behind the forward
    for (const m of modes) {
      await paths[m]!.up(16 * MiB)
      await paths[m]!.down(16 * MiB)
      await paths[m]!.setup(20)
    }

    const raw: Record<Mode, { up: number[]; down: number[]; cpu: number[]; setup: number[] }> = {
      tcp: { up: [], down: [], cpu: [], setup: [] },
      stock: { up: [], down: [], cpu: [], setup: [] },
      libp2p: { up: [], down: [], cpu: [], setup: [] },
      forward: { up: [], down: [], cpu: [], setup: [] },
    }
    for (let rep = 1; rep <= REPS; rep++) {
      for (const m of modes) {
        const p = paths[m]!
        const cpu0 = cpuNow(p.procs)
        const up = mibPerSec(BYTES, await p.up(BYTES))
        const down = mibPerSec(BYTES, await p.down(BYTES))
        raw[m].cpu.push((cpuNow(p.procs) - cpu0) / ((2 * BYTES) / (1024 * MiB)))
        raw[m].up.push(up)
        raw[m].down.push(down)
        log(`rep ${rep} ${m.padEnd(7)} up ${up} MiB/s, down ${down} MiB/s`)
      }
    }
    // set-up in blocks of 100, interleaved; also raw libp2p with optimistic protocol select, for comparison
    const lazy: number[] = []
    for (let done = 0; done < CONNECTIONS; done += 100) {
      const n = Math.min(100, CONNECTIONS - done)
      for (const m of modes) raw[m].setup.push(...(await paths[m]!.setup(n)))
      lazy.push(...(await dialer.request<{ samples: number[] }>(`setup-lazy ${n}`, SETUP_TIMEOUT)).samples)
    }
    for (const m of modes) log(`set-up ${m}: p50 ${summarize(raw[m].setup).p50} ms`)

    const results: Partial<Record<Mode, ModeResult>> = {}
    for (const m of modes) {
      const r = raw[m]
      results[m] = {
        upMiBs: r.up,
        downMiBs: r.down,
        upMedianMiBs: median(r.up),
        downMedianMiBs: median(r.down),
        upBestMiBs: Math.max(...r.up),
        downBestMiBs: Math.max(...r.down),
        upGbit: gbitPerSec(median(r.up)),
        cpuSecPerGiB: Math.round(median(r.cpu) * 100) / 100,
        setup: summarize(r.setup),
      }
    }
    await report(results, summarize(lazy))
  } finally {
    await pair?.stop()
    await Promise.all(children.map((c) => c.stop()))
    if (args.profile !== undefined)
      log(`CPU profiles in ${args.profile}; summarize with: node bench/profile.ts ${args.profile}`)
  }
}

async function report(results: Partial<Record<Mode, ModeResult>>, lazySetup: LatencySummary): Promise<void> {
  const { tcp, stock, libp2p, forward } = results
  const ratio = (a?: number, b?: number) =>
    a === undefined || b === undefined ? undefined : Math.round((a / b) * 100) / 100
  const ratios = {
    forwardVsLibp2pUp: ratio(forward?.upMedianMiBs, libp2p?.upMedianMiBs),
    forwardVsLibp2pDown: ratio(forward?.downMedianMiBs, libp2p?.downMedianMiBs),
    libp2pVsTcpUp: ratio(libp2p?.upMedianMiBs, tcp?.upMedianMiBs),
    forwardVsStockUp: ratio(forward?.upMedianMiBs, stock?.upMedianMiBs),
    forwardVsStockDown: ratio(forward?.downMedianMiBs, stock?.downMedianMiBs),
  }
  const targets =
    forward === undefined
      ? undefined
      : {
          forwardVsLibp2p: {
            target: `>= ${TARGETS.forwardVsLibp2p}`,
            up: ratios.forwardVsLibp2pUp,
            down: ratios.forwardVsLibp2pDown,
          },
          forwardGbit: {
            target: `>= ${TARGETS.forwardGbit}`,
            up: forward.upGbit,
            down: gbitPerSec(forward.downMedianMiBs),
          },
          setupP50Ms: { target: `<= ${TARGETS.setupP50Ms}`, value: forward.setup.p50 },
          met:
            (ratios.forwardVsLibp2pUp ?? 0) >= TARGETS.forwardVsLibp2p &&
            (ratios.forwardVsLibp2pDown ?? 0) >= TARGETS.forwardVsLibp2p &&
            forward.upGbit >= TARGETS.forwardGbit &&
            gbitPerSec(forward.downMedianMiBs) >= TARGETS.forwardGbit &&
            forward.setup.p50 <= TARGETS.setupP50Ms,
        }

  const rows: string[][] = [
    [
      'path',
      'up MiB/s',
      '(best)',
      'down MiB/s',
      '(best)',
      'up Gbit/s',
      'CPU s/GiB',
      'setup p50 ms',
      'p99 ms',
      'vs libp2p',
    ],
  ]
  for (const [name, r] of Object.entries(results) as [Mode, ModeResult][]) {
    const vs = name === 'libp2p' ? '1.00' : (ratio(r.upMedianMiBs, libp2p?.upMedianMiBs)?.toFixed(2) ?? '-')
    rows.push([
      { tcp: 'raw TCP', stock: 'stock js-libp2p stream', libp2p: 'raw libp2p stream', forward: 'warren forward' }[name],
      r.upMedianMiBs.toFixed(1),
      r.upBestMiBs.toFixed(1),
      r.downMedianMiBs.toFixed(1),
      r.downBestMiBs.toFixed(1),
      r.upGbit.toFixed(2),
      r.cpuSecPerGiB.toFixed(2),
      r.setup.p50.toFixed(3),
      r.setup.p99.toFixed(3),
      vs,
    ])
  }
  const load = loadavg().map((x) => x.toFixed(2))
  const lines = [
    '',
    formatTable(rows),
    '',
    `${args.mib} MiB per transfer, median (and best) of ${REPS}; set-up over ${CONNECTIONS} connections; "vs libp2p" is the`,
    `median upload ratio. CPU s/GiB counts every process on the path (bench client included) and is the figure least`,
    `disturbed by other load on the machine (load average now ${load.join(' ')}, ${cpus().length} CPUs).`,
    `raw libp2p set-up with optimistic protocol select (negotiateFully: false): p50 ${lazySetup.p50} ms, p99 ${lazySetup.p99} ms`,
  ]
  if (targets !== undefined) {
    const mark = (ok: boolean) => (ok ? 'met' : 'MISSED')
    lines.push(
      '',
      'targets:',
      `  forward vs stock js-libp2p (no Warren wrappers): up ${ratios.forwardVsStockUp}, down ${ratios.forwardVsStockDown}`,
      `  forward >= 70% of raw libp2p: up ${ratios.forwardVsLibp2pUp}, down ${ratios.forwardVsLibp2pDown}  ${mark((ratios.forwardVsLibp2pUp ?? 0) >= 0.7 && (ratios.forwardVsLibp2pDown ?? 0) >= 0.7)}`,
      `  forward >= 1.5 Gbit/s: up ${targets.forwardGbit.up}, down ${targets.forwardGbit.down}  ${mark(targets.forwardGbit.up >= 1.5 && targets.forwardGbit.down >= 1.5)}`,
      `  set-up p50 <= 2 ms: ${forward!.setup.p50} ms  ${mark(forward!.setup.p50 <= 2)}`,
    )
  }
  process.stdout.write(`${lines.join('\n')}\n`)

  const date = new Date().toISOString().slice(0, 10)
  const out = args.out ?? fileURLToPath(new URL(`results/${date}.json`, import.meta.url))
  await mkdir(fileURLToPath(new URL('results/', import.meta.url)), { recursive: true })
  const doc = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
      node: process.version,
    },
    settings: { mib: Number(args.mib), reps: REPS, connections: CONNECTIONS, chunkKiB: 256 },
    results,
    /** Raw libp2p set-up with `negotiateFully: false` (protocol name sent with the first byte). */
    libp2pOptimisticSelectSetup: lazySetup,
    ratios,
    targets,
  }
  await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`)
  process.stdout.write(`\nwrote ${out}\n`)
}

await main()
if (!args['no-http']) {
  log('HTTP: gateway and proxy versus direct (bench/http.ts)')
  await runHttpBench({ durationSec: 10, rounds: 3, connections: 64, loadgen: defaultLoadgen() })
}
if (!args['no-discovery']) {
  log('discovery: lookups by id in a 50-node testnet (bench/discovery.ts)')
  await runDiscoveryBench(DISCOVERY_DEFAULTS)
}
if (!args['no-transparent']) {
  const skip = transparentBenchSkip()
  log(
    `transparent mode versus SOCKS5 and a forward (bench/transparent.ts)${skip === undefined ? '' : `: skipped, ${skip}`}`,
  )
  if (skip === undefined)
    await runTransparentBench({
      mib: Math.min(Number(args.mib), 256),
      reps: REPS,
      connections: Math.min(CONNECTIONS, 300),
    })
}
if (!args['no-browser']) {
  const skip = browserBenchSkip()
  log(`browser → relay → node (bench/browser.ts)${skip === undefined ? '' : `: skipped, ${skip}`}`)
  if (skip === undefined) await runBrowserBenchReport({ loads: 20, mib: Math.min(Number(args.mib), 64) })
}
if (!args['no-relay']) {
  log('relay: CPU per relayed Gbit and memory per idle reservation (bench/relay.ts)')
  await runRelayBenchReport({
    mib: Math.min(Number(args.mib), 256),
    reps: Math.min(REPS, 3),
    reservations: 3_000,
    step: 500,
    variants: ['tuned'],
    throughput: true,
    idle: true,
    log,
  })
}
process.exit(0)
