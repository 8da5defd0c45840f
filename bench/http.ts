/**
 * The HTTP part of `npm run bench`: requests/s and p50/p99 latency with keep-alive, 64 connections and
 * small responses, through the gateway and through the HTTP proxy, against the same HTTP server hit directly, in
 * one run. Real processes: the HTTP server, two Warren daemons started with the CLI (A hosts `web`, B runs the
 * access port), and a real load generator (Debian's `wrk` when installed, else `autocannon`).
 *
 * Paths: direct `http://127.0.0.1:<server>/`, `warren forward` (a TCP forward: bytes only, no HTTP work), the gateway
 * `http://127.0.0.1:<access>/http/<A>/web/`, the HTTP proxy in absolute form `GET http://web.<A>.warren/`, and
 * `floor`: the smallest two-hop relay two Node processes can be (bench/relay-floor.ts: one TCP connection, an
 * 8-byte frame header, no encryption, no HTTP), what any relay written in Node can reach on this machine, and
 * `floor-libp2p`: the same relay with all clients in one stream of Warren's libp2p stack (relay-floor-libp2p.ts),
 * what any relay over Noise + Yamux can reach here, however it multiplexes its exchanges.
 * Each path gets a warm-up (2 s, then 1 s before each later round), then `--duration` seconds; the order is
 * interleaved over `--rounds` rounds and the median round is reported. Target: gateway >= 40% of direct requests/s.
 *
 * Each run also records the CPU time per request of daemon A (service host), daemon B (access port) and the HTTP
 * server (µs of user + system time from /proc, divided by the requests served): steadier than req/s on a busy machine.
 *
 *   node bench/http.ts [--duration 10] [--rounds 3] [--connections 64] [--loadgen wrk|autocannon] [--out f.json]
 *     [--paths direct,forward,gateway,proxy,floor,floor-libp2p] [--profile dir]
 *
 * `--profile <dir>` writes V8 CPU profiles of both daemons there (summarize with `node bench/profile.ts <dir>`);
 * with `--paths gateway` the profiles hold that path only.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import autocannon from 'autocannon'
import { formatNodeIdBase36, parseNodeId } from '../src/identity/node-id.ts'
import { helpIfAsked } from './help.ts'
import { Child } from './proc.ts'
import { formatTable, median } from './stats.ts'
import { startPair, type WarrenPair, warren } from './warren-pair.ts'

const WRK = '/usr/bin/wrk'
const TARGET_GATEWAY_VS_DIRECT = 0.4

export interface HttpBenchOptions {
  durationSec: number
  rounds: number
  connections: number
  loadgen: 'wrk' | 'autocannon'
  out?: string
  /** Run only these paths (default: all four). */
  paths?: string[]
  /** Write V8 CPU profiles of the daemons to this directory. */
  profile?: string
}

interface Load {
  rps: number
  p50Ms: number
  p99Ms: number
  errors: number
  non2xx: number
  /** CPU µs per request of daemon A, daemon B and the HTTP server during the run. */
  cpuUsPerReq?: { a: number; b: number; server: number }
  /** Service streams A accepted during the run (keep-alive reuse: at most one per load-generator connection). */
  streams?: number
  /**
   * req/s over the direct path's req/s of the same round, per round, and their median: paths of one round run
   * back to back, so a machine that speeds up or slows down during the run moves both sides of each ratio.
   */
  vsDirect?: { median: number; rounds: number[] }
}

interface Target {
  name: string
  /** URL the load generator connects to. */
  url: string
  /** Request target sent instead of the URL's path (absolute form for the proxy), with its Host. */
  absolute?: { path: string; host: string }
  /** The processes in the A (service side) and B (client side) columns, when not the two daemons. */
  procs?: [Child, Child]
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`)
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** `1.23ms` / `456.00us` / `1.20s` → ms. */
function wrkMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim())
  if (m === null) return Number.NaN
  const n = Number(m[1])
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000
}

export async function runWrk(t: Target, seconds: number, connections: number, dir: string): Promise<Load> {
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency']
  let lua = ''
  if (t.absolute !== undefined) {
    lua += `wrk.path = ${JSON.stringify(t.absolute.path)}\nwrk.headers["Host"] = ${JSON.stringify(t.absolute.host)}\n`
  }
  // WARREN_BENCH_SHOW=1: print the first non-2xx answers (costs the load generator some speed)
  if (process.env.WARREN_BENCH_SHOW === '1') {
    lua += `local n = 0\nresponse = function(status, headers, body)\n  if status >= 300 and n < 3 then n = n + 1; io.stderr:write("${t.name} " .. status .. " " .. body .. "\\n") end\nend\n`
  }
  if (lua !== '') {
    const script = join(dir, `${t.name}.lua`)
    await writeFile(script, lua)
    args.push('-s', script)
  }
  const { stdout, stderr } = await promisify(execFile)(WRK, [...args, t.url], { timeout: (seconds + 30) * 1000 })
  if (stderr.trim() !== '') log(stderr.trim())
  const pick = (re: RegExp): string => re.exec(stdout)?.[1] ?? 'NaN'
  return {
    rps: Math.round(Number(pick(/Requests\/sec:\s+([\d.]+)/))),
    p50Ms: wrkMs(pick(/\s50%\s+(\S+)/)),
    p99Ms: wrkMs(pick(/\s99%\s+(\S+)/)),
    errors: [...stdout.matchAll(/(?:connect|read|write|timeout) (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
  }
}

export async function runAutocannon(t: Target, seconds: number, connections: number): Promise<Load> {
  const r = await autocannon({
    url: t.url,
    connections,
    duration: seconds,
    pipelining: 1,
    ...(t.absolute === undefined
      ? {}
      : { requests: [{ method: 'GET', path: t.absolute.path, headers: { host: t.absolute.host } }] }),
  })
  return {
    rps: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  }
}

/** Runs the HTTP benchmark, prints its table and writes bench/results/<date>-http.json. */
export async function runHttpBench(opts: HttpBenchOptions): Promise<Record<string, Load>> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-bench-http-'))
  const server = new Child('http target', [fileURLToPath(new URL('http-target.ts', import.meta.url))])
  const floor: Child[] = []
  let pair: WarrenPair | undefined
  try {
    const { port } = await server.next<{ port: number }>(30_000)
    const floorScript = fileURLToPath(new URL('relay-floor.ts', import.meta.url))
    floor.push(new Child('relay floor back', [floorScript, 'back', String(port)]))
    const backPort = (await floor[0]!.next<{ port: number }>(30_000)).port
    floor.push(new Child('relay floor front', [floorScript, 'front', String(backPort)]))
    const floorPort = (await floor[1]!.next<{ port: number }>(30_000)).port
    const floorLibp2pScript = fileURLToPath(new URL('relay-floor-libp2p.ts', import.meta.url))
    floor.push(new Child('libp2p relay floor back', [floorLibp2pScript, 'back', String(port)]))
    const backAddr = (await floor[2]!.next<{ addr: string }>(30_000)).addr
    floor.push(new Child('libp2p relay floor front', [floorLibp2pScript, 'front', backAddr]))
    const floorLibp2pPort = (await floor[3]!.next<{ port: number }>(30_000)).port
    const daemonEnv: NodeJS.ProcessEnv =
      opts.profile === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${opts.profile}` }
    let accessPort = 0
    for (let attempt = 1; pair === undefined; attempt++) {
      accessPort = await freePort()
      log(`http bench: starting two Warren daemons, B's access port on 127.0.0.1:${accessPort}`)
      try {
        pair = await startPair({ web: port }, daemonEnv, { accessPort })
      } catch (err) {
        // the free port was taken meanwhile (daemon A's own listeners start at the same time): another one
        if (attempt >= 3 || !/address in use/.test((err as Error).message)) throw err
      }
    }
    const base36 = formatNodeIdBase36(parseNodeId(pair.aId))
    const fwd = pair.forwards.web!
    const all: Target[] = [
      { name: 'direct', url: `http://127.0.0.1:${port}/` },
      { name: 'forward', url: `http://${fwd.host}:${fwd.port}/` },
      { name: 'gateway', url: `http://127.0.0.1:${accessPort}/http/${pair.aId}/web/` },
      {
        name: 'proxy',
        url: `http://127.0.0.1:${accessPort}/`,
        absolute: { path: `http://web.${base36}.warren/`, host: `web.${base36}.warren` },
      },
      { name: 'floor', url: `http://127.0.0.1:${floorPort}/`, procs: [floor[0]!, floor[1]!] },
      { name: 'floor-libp2p', url: `http://127.0.0.1:${floorLibp2pPort}/`, procs: [floor[2]!, floor[3]!] },
    ]
    const targets = all.filter((t) => opts.paths === undefined || opts.paths.includes(t.name))
    if (targets.length === 0) throw new Error(`--paths names none of ${all.map((t) => t.name).join(', ')}`)
    const [a, b] = pair.daemons as [Child, Child]
    const streamsSoFar = async (): Promise<number> =>
      (JSON.parse(await warren(pair!.homes.a, ['status', '--json'])) as { streams: { total: number } }).streams.total
    const load = async (t: Target, seconds: number): Promise<Load> => {
      const streams0 = await streamsSoFar()
      const [pa, pb] = t.procs ?? [a, b]
      const cpu0 = [pa.cpuSeconds(), pb.cpuSeconds(), server.cpuSeconds()]
      const r =
        opts.loadgen === 'wrk'
          ? await runWrk(t, seconds, opts.connections, dir)
          : await runAutocannon(t, seconds, opts.connections)
      const perReq = (child: Child, i: number): number =>
        Math.round(((child.cpuSeconds() - cpu0[i]!) * 1e6) / Math.max(1, r.rps * seconds))
      const cpuUsPerReq = { a: perReq(pa, 0), b: perReq(pb, 1), server: perReq(server, 2) }
      return { ...r, cpuUsPerReq, streams: (await streamsSoFar()) - streams0 }
    }
    for (const t of targets) {
      const w = await load(t, 2) // warm-up: JIT, pooled streams, the peer connection
      if (w.rps === 0 || w.non2xx > 0 || w.errors > 0) log(`warm-up ${t.name}: ${JSON.stringify(w)}`)
      if (w.rps === 0 && t.name !== 'forward') throw new Error(`${t.name}: warm-up failed (${JSON.stringify(w)})`)
    }
    const runs: Record<string, Load[]> = Object.fromEntries(targets.map((t) => [t.name, []]))
    for (let round = 1; round <= opts.rounds; round++) {
      for (const t of targets) {
        // the gateway's idle service streams close after the keep-alive time (5 s) while other paths run: open them
        // again before measuring, so every round measures the steady state (and its p99 no stream set-up)
        if (round > 1) await load(t, 1)
        const r = await load(t, opts.durationSec)
        runs[t.name]!.push(r)
        const cpu = r.cpuUsPerReq
        log(
          `round ${round} ${t.name.padEnd(8)} ${r.rps} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, CPU µs/req A ${cpu?.a} B ${cpu?.b} server ${cpu?.server}, ${r.streams} streams`,
        )
      }
    }
    const results: Record<string, Load> = {}
    const round2 = (x: number): number => Math.round(x * 100) / 100
    for (const [name, rs] of Object.entries(runs)) {
      const m = median(rs.map((x) => x.rps))
      const mid = rs.reduce((best, r) => (Math.abs(r.rps - m) < Math.abs(best.rps - m) ? r : best))
      const direct = runs.direct
      const ratios = direct === undefined ? undefined : rs.map((r, i) => round2(r.rps / direct[i]!.rps))
      results[name] = {
        ...mid,
        errors: rs.reduce((s, r) => s + r.errors, 0),
        non2xx: rs.reduce((s, r) => s + r.non2xx, 0),
        ...(ratios === undefined ? {} : { vsDirect: { median: round2(median(ratios)), rounds: ratios } }),
      }
    }
    await report(results, opts)
    return results
  } finally {
    await pair?.stop()
    for (const f of floor) await f.stop()
    await server.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

async function report(results: Record<string, Load>, opts: HttpBenchOptions): Promise<void> {
  const direct = results.direct?.rps ?? Number.NaN
  const rows = [['path', 'req/s', 'p50 ms', 'p99 ms', 'vs direct', 'CPU µs/req A', 'B', 'server', 'errors', 'non-2xx']]
  const labels: Record<string, string> = {
    direct: 'HTTP server, direct',
    forward: 'warren forward (TCP)',
    gateway: 'gateway /http/<node>/web/',
    proxy: 'HTTP proxy, absolute form',
    floor: 'minimal Node relay (floor)',
    'floor-libp2p': 'floor over one libp2p stream',
  }
  for (const [name, r] of Object.entries(results)) {
    rows.push([
      labels[name] ?? name,
      String(r.rps),
      r.p50Ms.toFixed(2),
      r.p99Ms.toFixed(2),
      r.vsDirect === undefined
        ? (r.rps / direct).toFixed(2)
        : `${r.vsDirect.median.toFixed(2)} (${Math.min(...r.vsDirect.rounds).toFixed(2)}-${Math.max(...r.vsDirect.rounds).toFixed(2)})`,
      String(r.cpuUsPerReq?.a ?? ''),
      String(r.cpuUsPerReq?.b ?? ''),
      String(r.cpuUsPerReq?.server ?? ''),
      String(r.errors),
      String(r.non2xx),
    ])
  }
  const gatewayRatio =
    results.gateway?.vsDirect?.median ?? Math.round(((results.gateway?.rps ?? Number.NaN) / direct) * 100) / 100
  const met = gatewayRatio >= TARGET_GATEWAY_VS_DIRECT
  process.stdout.write(
    [
      '',
      formatTable(rows),
      '',
      `${opts.loadgen}, ${opts.connections} connections with keep-alive, 13-byte responses, ${opts.durationSec} s per run,`,
      `median of ${opts.rounds} interleaved rounds ("vs direct": median and range of the per-round ratios); load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}, ${cpus().length} CPUs shared by load generator, daemons and server.`,
      '',
      'CPU µs/req: user + system time of daemon A (hosts web), daemon B (access port) and the HTTP server per request.',
      'minimal Node relay: two processes, one TCP connection, 8-byte frames, no encryption or HTTP (relay-floor.ts);',
      'A/B are its back (at the server) and front (at the client). What any two-hop relay in Node reaches here.',
      "floor over one libp2p stream: the same, all clients in one Noise + Yamux stream of Warren's libp2p stack",
      '(relay-floor-libp2p.ts). What any relay over this stack reaches here, even one multiplexing its own exchanges.',
      '',
      'target:',
      `  gateway >= ${TARGET_GATEWAY_VS_DIRECT * 100}% of direct requests/s: ${gatewayRatio}  ${met ? 'met' : 'MISSED'}`,
      ...(results.floor?.vsDirect === undefined
        ? []
        : [
            `  (on this machine in this run, the minimal Node relay reached ${results.floor.vsDirect.median} of direct)`,
          ]),
      ...(results['floor-libp2p']?.vsDirect === undefined
        ? []
        : [`  (and the floor over one libp2p stream ${results['floor-libp2p'].vsDirect.median} of direct)`]),
      '',
    ].join('\n'),
  )
  const date = new Date().toISOString().slice(0, 10)
  const out = opts.out ?? fileURLToPath(new URL(`results/${date}-http.json`, import.meta.url))
  await mkdir(fileURLToPath(new URL('results/', import.meta.url)), { recursive: true })
  const doc = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg(), node: process.version },
    settings: opts,
    results,
    target: { gatewayVsDirect: { target: `>= ${TARGET_GATEWAY_VS_DIRECT}`, value: gatewayRatio, met } },
  }
  await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`)
  process.stdout.write(`wrote ${out}\n`)
}

export function defaultLoadgen(): 'wrk' | 'autocannon' {
  return existsSync(WRK) ? 'wrk' : 'autocannon'
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  helpIfAsked(import.meta.url)
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '64' },
      loadgen: { type: 'string', default: defaultLoadgen() },
      out: { type: 'string' },
      paths: { type: 'string' },
      profile: { type: 'string' },
    },
  })
  if (values.loadgen !== 'wrk' && values.loadgen !== 'autocannon') throw new Error('--loadgen is wrk or autocannon')
  await runHttpBench({
    durationSec: Number(values.duration),
    rounds: Number(values.rounds),
    connections: Number(values.connections),
    loadgen: values.loadgen,
    ...(values.out === undefined ? {} : { out: values.out }),
    ...(values.paths === undefined ? {} : { paths: values.paths.split(',') }),
    ...(values.profile === undefined ? {} : { profile: values.profile }),
  })
  if (values.profile !== undefined)
    log(`CPU profiles in ${values.profile}; summarize: node bench/profile.ts ${values.profile}`)
  process.exit(0)
}
