/**
 * `npm run bench:peers`: Warren head to head with the tunnels people use instead, all real processes on loopback in
 * front of the same targets: plain TCP (no tunnel), socat (no crypto), OpenSSH `-L` (chacha20-poly1305), a stock
 * js-libp2p forwarder (bench/peers/libp2p-forward.ts), holesail on a local hyperdht testnet (bench/peers/holesail.ts),
 * iroh through its Node binding (bench/peers/iroh.ts) and Warren (two daemons, `warren forward`). A workload that
 * fails on one tunnel becomes a note in the output and the result file, and the run goes on.
 *
 * Workloads, interleaved: every round runs each workload on every tunnel, in an order rotated from round to round.
 * - bulk: `--bulk` MiB up, then down, through one connection (MiB/s); before the first round each tunnel moves
 *   `--bulk-warmup` MiB each way unmeasured (a long-running forwarder has warmed up long before: Warren's daemons,
 *   fresh, moved their first 512 MiB at 0.6-0.7 of the speed of the third);
 * - set-up: `--setup` sequential new connections through the established tunnel, connect + 1-byte echo (p50, p99 ms),
 *   after `--setup-warmup` unmeasured ones (a long-running forwarder's set-up code is compiled and optimized: with
 *   20, Warren's and stock libp2p's first rounds took 1.2-1.8× their later ones), with the machine's TCP sockets
 *   (TIME_WAIT included) beside it;
 * - cold: `--cold` first connections to a peer never met, from the user's side asking to the first byte echoed (p50
 *   and largest, ms; bench/peers/cold.ts says what each tunnel times: a new ssh process, a new libp2p node or iroh
 *   endpoint, a new holesail client, a new serving Warren daemon per sample);
 * - HTTP: keep-alive GETs with `--connections` connections for `--http-seconds` (req/s; wrk when installed, else
 *   autocannon, the load generator of bench/http.ts), and the CPU time of both forwarder ends per request; for Warren
 *   also through its HTTP gateway (`/http/<node>/web/` on B's access port), right after the forward;
 * - memory: each round, PSS of both forwarder ends (with child processes, such as sshd's per-connection ones) at
 *   idle after the workloads, and again after `--idle-wait` seconds (default 60) of idling; then a fresh instance of
 *   each tunnel is started, its idle PSS read, `--idle` idle forwarded connections opened through it and the PSS
 *   growth of both ends per connection computed, right after they opened and again once they stayed idle for
 *   `--idle-settle` seconds (default 35; `--workloads idle`: only this part). The idle connections are held by
 *   child processes (bench/peers/idle-clients.ts), each echoing 8 random bytes; every end must be allowed
 *   `--idle` + 100 open files (the hard `ulimit -n` the bench inherits), or the workload says so and stops.
 *
 * Prints medians with [min-max] and the 1-minute load average, Warren's ratio to each peer, the issue's targets, and
 * writes bench/results/<date>-peers.json.
 *
 *   node bench/peers.ts [--rounds 3] [--bulk 512] [--setup 200] [--setup-warmup 500] [--http-seconds 5] [--connections 64]
 *     [--cold 10] [--idle 2000] [--idle-wait 60] [--idle-peers warren,…] [--peers tcp,socat,ssh,libp2p,holesail,iroh,warren]
 *     [--workloads bulk,setup,cold,http,memory,idle]
 *     [--loadgen wrk|autocannon] [--out file.json]
 *   node bench/peers.ts --report bench/results/<date>-peers.json   # prints the tables of a result file again
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { defaultLoadgen } from './http.ts'
import {
  holesailTunnel,
  irohTunnel,
  type NotMeasured,
  nodeFloor,
  openssh,
  plainTcp,
  socat,
  stockLibp2p,
  type Targets,
  type Tunnel,
  warrenTunnel,
} from './peers/forwarders.ts'
import { type Figures, METRICS, type Metric, ratioTable, resultTable, targetChecks } from './peers/report.ts'
import { bulk, cold, http, idlePss, perConnection, setup } from './peers/workloads.ts'
import { Child } from './proc.ts'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    bulk: { type: 'string', default: '512' },
    'bulk-warmup': { type: 'string', default: '512' },
    setup: { type: 'string', default: '200' },
    'setup-warmup': { type: 'string', default: '500' },
    cold: { type: 'string', default: '10' },
    'http-seconds': { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
    idle: { type: 'string', default: '2000' },
    'idle-wait': { type: 'string', default: '60' },
    'idle-peers': { type: 'string' },
    'idle-settle': { type: 'string', default: '35' },
    peers: { type: 'string', default: 'tcp,socat,ssh,libp2p,holesail,iroh,warren' },
    workloads: { type: 'string', default: 'bulk,setup,cold,http,memory' },
    loadgen: { type: 'string' },
    out: { type: 'string' },
    report: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})

if (args.help === true) {
  process.stdout.write(`Usage: npm run bench:peers -- [options]
Warren head to head with other tunnels on loopback: bulk both ways, connection set-up, HTTP keep-alive, memory.

  --peers <list>        tunnels to measure (default tcp,socat,ssh,libp2p,holesail,iroh,warren):
                          tcp       no tunnel, the targets themselves
                          socat     socat TCP-LISTEN,fork (no crypto)
                          ssh       OpenSSH -L through a private sshd (chacha20-poly1305)
                          libp2p    stock js-libp2p forwarder (TCP, Noise, Yamux)
                          holesail  holesail-server/-client on a local hyperdht testnet (UDX, Noise)
                          iroh      @number0/iroh Node binding, relays off, direct loopback address (QUIC)
                          warren    two Warren daemons and warren forward
                          floor     not by default: the smallest relay two Node processes can be, no crypto,
                                    no flow control (bench/relay-floor.ts); HTTP only
  --workloads <list>    bulk,setup,cold,http,memory,idle (default bulk,setup,cold,http,memory)
  --rounds <n>          interleaved rounds (default 3)
  --bulk <MiB>          bytes per bulk direction (default 512; iroh is capped at 64), after
                          --bulk-warmup <MiB> each way unmeasured per tunnel before the first round (default 512; 0: none)
  --setup <n>           measured new connections (default 200), after --setup-warmup <n> (default 500)
  --cold <n>            first connections to a peer never met, per round (default 10): a new ssh process,
                          libp2p node, iroh endpoint, holesail client or serving Warren daemon for each
  --http-seconds <s>    HTTP load per round (default 5), with --connections <n> (default 64)
  --loadgen <name>      wrk or autocannon (default: wrk when installed)
  --idle <n>            idle connections per fresh tunnel (default 2000); --idle-peers <list> limits which tunnels
  --idle-wait <s>       idling before the second memory reading (default 60; 0 skips it)
  --idle-settle <s>     how long the idle connections stay before their second reading (default 35; 0 skips it)
  --out <file>          result file (default bench/results/<date>-peers.json)
  --report <file>       print the tables of a result file again
`)
  process.exit(0)
}
const rounds = Number(args.rounds)
const bulkMiB = Number(args.bulk)
const loadgen = (args.loadgen ?? defaultLoadgen()) as 'wrk' | 'autocannon'
const wanted = new Set(args.peers.split(','))
const workloads = new Set(args.workloads.split(','))
/** Tunnels the fresh-ends memory phase runs on (default: all): ssh `-L` takes minutes for 20,000 channels. */
const idlePeers = args['idle-peers'] === undefined ? undefined : new Set(args['idle-peers'].split(','))

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`)
}

const starters: Record<string, (t: Targets) => Promise<Tunnel | NotMeasured>> = {
  tcp: async (t) => plainTcp(t),
  socat,
  ssh: openssh,
  libp2p: stockLibp2p,
  holesail: holesailTunnel,
  iroh: irohTunnel,
  warren: warrenTunnel,
  floor: nodeFloor,
}

const WORKLOADS = ['bulk', 'setup', 'cold', 'http', 'memory', 'idle']
for (const [what, given, known] of [
  ['--peers', wanted, Object.keys(starters)],
  ['--workloads', workloads, WORKLOADS],
] as const) {
  const unknown = [...given].filter((x) => !known.includes(x))
  if (unknown.length > 0) {
    process.stderr.write(`${what}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})\n`)
    process.exit(2)
  }
}

if (args.report !== undefined) {
  const saved = JSON.parse(await readFile(args.report, 'utf8')) as {
    figures: Figures
    notMeasured: NotMeasured[]
    notes?: string[]
  }
  printTables(saved.figures, Object.keys(saved.figures), saved.notMeasured, saved.notes ?? [])
  process.exit(0)
}

function printTables(figures: Figures, names: string[], notMeasured: NotMeasured[], notes: string[]): void {
  process.stdout.write(`\n${resultTable(figures, names, notMeasured)}\n`)
  process.stdout.write(`${notes.map((n) => `note: ${n}\n`).join('')}\n`)
  if (figures.warren === undefined) return
  process.stdout.write(`Warren ÷ peer (medians; for ms, MiB and KiB lower is better):\n`)
  process.stdout.write(`${ratioTable(figures, names)}\n\n`)
  process.stdout.write(
    `${targetChecks(figures)
      .map((c) => `${c.ok ? 'MET ' : 'MISS'}  ${c.text}`)
      .join('\n')}\n`,
  )
}

const servers = new Child('xfer/echo servers', [fileURLToPath(new URL('servers.ts', import.meta.url))])
const httpServer = new Child('http target', [fileURLToPath(new URL('http-target.ts', import.meta.url))])
const tunnels: (Tunnel & { key: string })[] = []
const notMeasured: NotMeasured[] = []
/** Workloads a tunnel could not run, or ran with other parameters, and why: printed and saved with the figures. */
const notes: string[] = []
const scratch = await mkdtemp(join(tmpdir(), 'warren-bench-peers-'))
const figures: Figures = {}
const started = new Date()
try {
  const { xfer, echo } = await servers.next<{ xfer: number; echo: number }>(30_000)
  const { port } = await httpServer.next<{ port: number }>(30_000)
  const targets: Targets = { xfer, echo, http: port }
  for (const [key, start] of Object.entries(starters)) {
    if (!wanted.has(key)) continue
    log(`starting ${key}`)
    const t = await start(targets)
    if ('reason' in t) {
      log(`${t.name}: not measured: ${t.reason}`)
      notMeasured.push(t)
    } else tunnels.push({ ...t, key })
  }
  for (const t of tunnels) figures[t.name] = {}
  /** Whether `t` runs workload `w` (a tunnel may run only some). */
  const runs = (t: Tunnel, w: string): boolean => workloads.has(w) && (t.only === undefined || t.only.includes(w))
  for (const t of tunnels) {
    if (t.only !== undefined && t.onlyNote !== undefined && [...workloads].some((w) => !runs(t, w)))
      notes.push(`${t.name}: ${t.onlyNote}`)
  }
  const add = (t: Tunnel, m: Metric, value: number, load: number, tcp?: number): void => {
    const list = figures[t.name]![m] ?? []
    list.push(tcp === undefined ? { value, load } : { value, load, tcpSockets: tcp })
    figures[t.name]![m] = list
  }
  /** Runs one workload on one tunnel; a failure is recorded as a note and the run goes on. */
  const attempt = async (t: Tunnel, what: string, run: () => Promise<void>): Promise<void> => {
    try {
      await run()
    } catch (err) {
      const note = `${t.name}: ${what}: ${(err as Error).message.split('\n')[0]}`
      log(`  ${note}`)
      if (!notes.includes(note)) notes.push(note)
    }
  }
  for (const t of tunnels.filter((x) => runs(x, 'bulk'))) {
    if (t.maxBulkMiB !== undefined && t.maxBulkMiB < bulkMiB) notes.push(`${t.name}: bulk: ${t.bulkNote}`)
  }
  const warmMiB = Number(args['bulk-warmup'])
  for (const t of warmMiB > 0 ? tunnels.filter((x) => runs(x, 'bulk')) : []) {
    for (const dir of ['up', 'down'] as const) {
      await attempt(t, `bulk warm-up ${dir}`, async () => {
        await bulk(t, dir, Math.min(warmMiB, t.maxBulkMiB ?? warmMiB))
      })
    }
  }
  for (let r = 0; r < rounds; r++) {
    const order = tunnels.map((_, i) => tunnels[(i + r) % tunnels.length]!)
    log(`round ${r + 1}/${rounds}: ${order.map((t) => t.name).join(', ')}`)
    for (const t of order.filter((x) => runs(x, 'bulk'))) {
      for (const dir of ['up', 'down'] as const) {
        await attempt(t, `bulk ${dir}`, async () => {
          const s = await bulk(t, dir, Math.min(bulkMiB, t.maxBulkMiB ?? bulkMiB))
          add(t, dir === 'up' ? 'bulkUp' : 'bulkDown', s.value, s.load)
          log(`  ${t.name} bulk ${dir}: ${s.value} MiB/s (load ${s.load})`)
        })
      }
    }
    for (const t of order.filter((x) => runs(x, 'setup'))) {
      await attempt(t, 'set-up', async () => {
        const s = await setup(t, Number(args.setup), Number(args['setup-warmup']))
        add(t, 'setupP50', s.p50.value, s.p50.load, s.p50.tcpSockets)
        add(t, 'setupP99', s.p99.value, s.p99.load, s.p99.tcpSockets)
        log(`  ${t.name} set-up: p50 ${s.p50.value} ms, p99 ${s.p99.value} ms (${s.p50.tcpSockets} TCP sockets)`)
      })
    }
    for (const t of order.filter((x) => runs(x, 'cold'))) {
      if (t.cold === undefined) continue
      await attempt(t, 'cold connect', async () => {
        const s = await cold(t, Number(args.cold))
        add(t, 'coldP50', s.p50.value, s.p50.load)
        add(t, 'coldMax', s.max.value, s.max.load)
        log(`  ${t.name} cold connect: p50 ${s.p50.value} ms, largest ${s.max.value} ms`)
      })
    }
    for (const t of order.filter((x) => runs(x, 'http'))) {
      await attempt(t, 'HTTP', async () => {
        const s = await http(t, {
          seconds: Number(args['http-seconds']),
          connections: Number(args.connections),
          loadgen,
          dir: scratch,
        })
        add(t, 'httpRps', s.value, s.load)
        if (s.cpuUsPerRequest !== undefined) add(t, 'httpCpuUs', s.cpuUsPerRequest, s.load)
        log(
          `  ${t.name} HTTP: ${s.value} req/s, ${s.cpuUsPerRequest ?? '-'} CPU µs/request (${s.errors} errors, load ${s.load})`,
        )
      })
      if (t.gatewayUrl === undefined) continue
      const url = t.gatewayUrl
      await attempt(t, 'HTTP through the gateway', async () => {
        const s = await http(
          t,
          { seconds: Number(args['http-seconds']), connections: Number(args.connections), loadgen, dir: scratch },
          url,
        )
        if (s.errors > 0) throw new Error(`${s.errors} errors or non-2xx answers`)
        add(t, 'gatewayRps', s.value, s.load)
        if (s.cpuUsPerRequest !== undefined) add(t, 'gatewayCpuUs', s.cpuUsPerRequest, s.load)
        log(
          `  ${t.name} HTTP through the gateway: ${s.value} req/s, ${s.cpuUsPerRequest ?? '-'} CPU µs/request (load ${s.load})`,
        )
      })
    }
    for (const t of order.filter((x) => runs(x, 'memory'))) {
      if (t.pids.length === 0) continue
      const m = await idlePss(t)
      add(t, 'idleMiB', m.bothMiB, m.load)
      add(t, 'idleMaxEndMiB', Math.max(...m.endsMiB), m.load)
      log(`  ${t.name} idle after use: ${m.bothMiB} MiB (ends ${m.endsMiB.join(' / ')})`)
    }
    // the same ends once they have been idle for a while (a daemon gives memory back when it has been quiet)
    if (order.some((x) => runs(x, 'memory') && x.pids.length > 0) && Number(args['idle-wait']) > 0) {
      await new Promise((r) => setTimeout(r, Number(args['idle-wait']) * 1000))
      for (const t of order.filter((x) => runs(x, 'memory'))) {
        if (t.pids.length === 0) continue
        const m = await idlePss(t)
        add(t, 'laterMiB', m.bothMiB, m.load)
        add(t, 'laterMaxEndMiB', Math.max(...m.endsMiB), m.load)
        log(`  ${t.name} idle ${args['idle-wait']} s after use: ${m.bothMiB} MiB (ends ${m.endsMiB.join(' / ')})`)
      }
    }
    // memory of fresh ends: started for this, idle, then with --idle idle connections through them
    for (const t of order.filter((x) => runs(x, 'memory') || runs(x, 'idle'))) {
      if (t.pids.length === 0 || (idlePeers !== undefined && !idlePeers.has(t.key))) continue
      const fresh = (await starters[t.key]!(targets)) as Tunnel
      try {
        const m = await idlePss(fresh)
        add(t, 'startMiB', Math.max(...m.endsMiB), m.load)
        add(t, 'startBothMiB', m.bothMiB, m.load)
        // a tunnel that cannot hold --idle connections gets no figure for this round, and the reason is logged
        const c = await perConnection(fresh, Number(args.idle), Number(args['idle-settle'])).catch((err: Error) => {
          const note = `${t.name}: per idle connection: ${err.message.split('\n')[0]}`
          log(`  ${note}`)
          if (!notes.includes(note)) notes.push(note)
          return undefined
        })
        if (c !== undefined) add(t, 'perConnKiB', c.value, c.load)
        if (c?.later !== undefined) add(t, 'perConnLaterKiB', c.later.value, c.later.load)
        const later = c?.later === undefined ? '' : `, ${c.later.value} after ${args['idle-settle']} s`
        log(
          `  ${t.name} fresh: ${m.bothMiB} MiB (ends ${m.endsMiB.join(' / ')})${c === undefined ? '' : `, ${c.value} KiB per idle connection${later} (${c.open} open at once, all echoed, sha256 ${c.sha256.slice(0, 16)})`}`,
        )
      } finally {
        await fresh.stop()
      }
    }
  }
} finally {
  await Promise.all(tunnels.map((t) => t.stop().catch((err: Error) => log(`${t.name} stop: ${err.message}`))))
  await Promise.all([servers.stop(), httpServer.stop()])
  await rm(scratch, { recursive: true, force: true })
}

printTables(
  figures,
  tunnels.map((t) => t.name),
  notMeasured,
  notes,
)
const out =
  args.out ?? fileURLToPath(new URL(`results/${started.toISOString().slice(0, 10)}-peers.json`, import.meta.url))
await mkdir(join(out, '..'), { recursive: true })
await writeFile(
  out,
  `${JSON.stringify(
    {
      started: started.toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      options: { ...args, rounds, bulkMiB, loadgen },
      metrics: METRICS,
      figures,
      notMeasured,
      notes,
      targets: figures.warren === undefined ? [] : targetChecks(figures),
    },
    null,
    2,
  )}\n`,
)
log(`wrote ${out}`)
