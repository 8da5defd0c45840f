/**
 * `node bench/setup-held.ts`: what idle forwarded connections cost a new one. Two Warren daemons on loopback
 * (bench/warren-pair.ts, stream limits raised to 20,000) forward the echo server of bench/servers.ts. For each count
 * in `--held` (in turn, `--rounds` times over), that many connections are opened through the forward and left idle
 * (by bench/peers/idle-clients.ts children, 8,000 each; every one echoes 8 random bytes, SHA-256 checked), then
 * `--connections` new ones are made one after another from this process (connect and one byte echoed, the set-up
 * workload of `npm run bench:peers`) and the held ones are closed again. A round prints the p50 and p99 of a new
 * connection, the p50 of as many made to the echo server directly right after (the kernel's share), and each
 * daemon's CPU time per new connection (utime + stime from /proc); `--warmup` connections run first, unmeasured.
 * Each daemon and the echo server holds a descriptor per connection, so the largest count is the open-file limit
 * less 100.
 *
 * `--node-options` is passed to both daemons as NODE_OPTIONS, e.g.
 * `--node-options='--cpu-prof --cpu-prof-dir=/tmp/prof'`.
 *
 *   node bench/setup-held.ts [--held 0,8000] [--connections 500] [--warmup 1500] [--rounds 2]
 *     [--node-options='…'] [--out bench/results/<date>-setup-held.json]
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { loadavg } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { argsOrExit, helpIfAsked } from './help.ts'
import { cpuSeconds } from './peers/cpu.ts'
import { type IdleClientsAnswer, openFilesLimit, PER_CLIENT, SPARE_FILES } from './peers/workloads.ts'
import { Child } from './proc.ts'
import { quantile } from './stats.ts'
import { startPair } from './warren-pair.ts'

export interface HeldRound {
  held: number
  round: number
  p50Ms: number
  p99Ms: number
  /** The same round trip to the echo server itself, without the forward, in the same state (a baseline). */
  directP50Ms: number
  /** CPU µs per new connection: the daemon that accepts the client's connection, then the one that serves it. */
  cpuUsPerConnection: { forwarding: number; serving: number }
  loadAverage: number
}

/** One connect + one byte echoed through `port`, in ms; rejects on an error, a close before the echo, or 10 s. */
function roundTrip(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const s = connect({ host: '127.0.0.1', port, noDelay: true })
    const timer = setTimeout(() => fail(new Error('no echo within 10 s')), 10_000)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      s.destroy()
      reject(err)
    }
    s.once('connect', () => s.write('x'))
    s.once('data', () => {
      clearTimeout(timer)
      s.destroy()
      resolve(performance.now() - t0)
    })
    s.once('error', fail)
    s.once('close', () => fail(new Error('closed before the echo')))
  })
}

const IDLE_CLIENTS = fileURLToPath(new URL('peers/idle-clients.ts', import.meta.url))

/** Opens `n` idle connections through `port` from child processes; stops them all on a failure or a differing echo. */
async function hold(port: number, n: number): Promise<Child[]> {
  const children: Child[] = []
  try {
    for (let left = n; left > 0; left -= PER_CLIENT) {
      const c = new Child(`idle clients ${children.length + 1}`, [IDLE_CLIENTS, String(port)])
      children.push(c)
      await c.next(30_000)
      const r = await c.request<IdleClientsAnswer>(`open ${Math.min(left, PER_CLIENT)}`, 30 * 60_000)
      if (r.failed > 0 || r.echoed !== r.open || r.sentSha256 !== r.gotSha256) {
        throw new Error(`held connection ${n - left + r.open + 1} of ${n}: ${r.firstError ?? 'an echo differs'}`)
      }
    }
    return children
  } catch (err) {
    await Promise.all(children.map((c) => c.stop()))
    throw err
  }
}

export async function setupHeld(opts: {
  held: number[]
  connections: number
  warmup: number
  rounds: number
  nodeOptions?: string
  log?: (line: string) => void
}): Promise<HeldRound[]> {
  const limit = openFilesLimit()
  const most = Math.max(...opts.held)
  if (most + SPARE_FILES > limit) {
    throw new Error(
      `${most} held connections take a descriptor each in each daemon, and the open-file limit is ${limit}`,
    )
  }
  const servers = new Child('echo server', [fileURLToPath(new URL('servers.ts', import.meta.url))])
  const { echo } = await servers.next<{ echo: number }>(30_000)
  const limits = { maxStreams: 20_000, maxStreamsPerPeer: 20_000 }
  const env = opts.nodeOptions === undefined ? {} : { NODE_OPTIONS: opts.nodeOptions }
  const pair = await startPair({ echo }, env, { config: { limits } }).catch(async (err: unknown) => {
    await servers.stop()
    throw err
  })
  // daemons[0] is A, which serves the echo; daemons[1] is B, whose forward the client connects to
  const [serving, forwarding] = pair.daemons.map((d) => d.proc.pid!)
  const rounds: HeldRound[] = []
  try {
    const port = pair.forwards.echo!.port
    for (let i = 0; i < opts.warmup; i++) await roundTrip(port)
    for (let round = 1; round <= opts.rounds; round++) {
      for (const n of opts.held) {
        const held = await hold(port, n)
        try {
          const cpu0 = [cpuSeconds(forwarding!), cpuSeconds(serving!)]
          const ms: number[] = []
          for (let i = 0; i < opts.connections; i++) ms.push(await roundTrip(port))
          const cpu1 = [cpuSeconds(forwarding!), cpuSeconds(serving!)]
          const direct: number[] = []
          for (let i = 0; i < opts.connections; i++) direct.push(await roundTrip(echo))
          const per = (i: number): number => Math.round(((cpu1[i]! - cpu0[i]!) * 1e6) / opts.connections)
          const r: HeldRound = {
            held: n,
            round,
            p50Ms: Math.round(quantile(ms, 0.5) * 1000) / 1000,
            p99Ms: Math.round(quantile(ms, 0.99) * 1000) / 1000,
            directP50Ms: Math.round(quantile(direct, 0.5) * 1000) / 1000,
            cpuUsPerConnection: { forwarding: per(0), serving: per(1) },
            loadAverage: Math.round(loadavg()[0]! * 100) / 100,
          }
          rounds.push(r)
          opts.log?.(
            `round ${round}, ${n} held: new connection p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms (to the target ` +
              `directly ${r.directP50Ms} ms); CPU per connection ` +
              `${r.cpuUsPerConnection.forwarding} µs forwarding, ${r.cpuUsPerConnection.serving} µs serving (load ${r.loadAverage})`,
          )
        } finally {
          await Promise.all(held.map((c) => c.stop()))
        }
        // let both daemons see the held connections go before the next count
        await new Promise((r) => setTimeout(r, 2000))
      }
    }
    return rounds
  } finally {
    await pair.stop()
    await servers.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  helpIfAsked(import.meta.url)
  const parsed = argsOrExit('setup-held', {
    options: {
      held: { type: 'string', default: '0,8000' },
      connections: { type: 'string', default: '500' },
      warmup: { type: 'string', default: '1500' },
      rounds: { type: 'string', default: '2' },
      'node-options': { type: 'string' },
      out: { type: 'string' },
    },
  })
  const args = parsed.values
  const held = args.held.split(',').map(Number)
  const counts = [Number(args.connections), Number(args.warmup), Number(args.rounds)]
  if (held.some((n) => !Number.isInteger(n) || n < 0) || counts.some((n) => !Number.isInteger(n) || n < 0)) {
    process.stderr.write('setup-held: --held takes whole numbers separated by commas; the other counts whole numbers\n')
    process.exit(2)
  }
  const date = new Date().toISOString().slice(0, 10)
  const out = args.out ?? fileURLToPath(new URL(`results/${date}-setup-held.json`, import.meta.url))
  const rounds = await setupHeld({
    held,
    connections: counts[0]!,
    warmup: counts[1]!,
    rounds: counts[2]!,
    nodeOptions: args['node-options'],
    log: (line) => process.stdout.write(`${line}\n`),
  }).catch((err: unknown) => {
    process.stderr.write(`setup-held: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, `${JSON.stringify({ started: new Date().toISOString(), rounds }, null, 2)}\n`)
  process.stdout.write(`written: ${out}\n`)
}
