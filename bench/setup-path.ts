/**
 * `node bench/setup-path.ts`: where the time of a new forwarded connection goes, on the path the client waits for.
 * Two Warren daemons on loopback (bench/warren-pair.ts) forward an echo server in this process; after `--warmup`
 * unmeasured ones, `--connections` sequential connect + 1-byte echo round trips (the set-up workload of
 * `npm run bench:peers`) run while `perf record` takes the system-call tracepoints of both daemons. For each
 * connection the first event of each step after the forwarding end (B) accepts it gives the step's offset; the
 * table is the median offset of each step, in µs, and the time between a step and the one before:
 *
 *   B accept → B recvfrom (the local-user check's netlink answer) → B writev (the stream, its request and the
 *   client's byte, to A) → A read → A socket (for the target) → A connect → its return → A write (the byte to the
 *   target) → A writev (the answer) → A read (the target's echo) → A writev → B read → B write (the echo to the
 *   client)
 *
 * It needs Linux `perf` with access to the syscalls tracepoints (root, or perf_event_paranoid ≤ -1). The tracepoints
 * cost a few µs per connection, so the p50 printed here runs a little above bench:peers'.
 *
 *   node bench/setup-path.ts [--connections 1500] [--warmup 1500] [--out bench/results/<date>-setup-path.json]
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { helpIfAsked } from './help.ts'
import { startPair } from './warren-pair.ts'

interface TraceEvent {
  pid: number
  /** µs */
  t: number
  name: string
  args: string
}

/** A step: the process, the tracepoint and a test of its arguments. */
type Step = [label: string, end: 'A' | 'B', event: string, test?: (args: string) => boolean]

const ONE_BYTE = (a: string): boolean => /count: 0x0+1$/.test(a)
const STEPS: Step[] = [
  ["B has the local-user check's answer", 'B', 'sys_exit_recvfrom'],
  ['B writev', 'B', 'sys_enter_writev'],
  ['A read', 'A', 'sys_exit_read'],
  ["A makes the target's socket", 'A', 'sys_enter_socket'],
  ['A connect', 'A', 'sys_enter_connect'],
  ['A connect returns', 'A', 'sys_exit_connect'],
  ['A write (to the target)', 'A', 'sys_enter_write', ONE_BYTE],
  ['A writev', 'A', 'sys_enter_writev'],
  ["A read (the target's echo)", 'A', 'sys_exit_read'],
  ['A writev (the echo)', 'A', 'sys_enter_writev'],
  ['B read', 'B', 'sys_exit_read'],
  ['B write (to the client)', 'B', 'sys_enter_write', ONE_BYTE],
]
const TRACEPOINTS = [
  'sys_enter_accept4',
  'sys_exit_recvfrom',
  'sys_enter_socket',
  'sys_exit_read',
  'sys_enter_write',
  'sys_enter_writev',
  'sys_enter_connect',
  'sys_exit_connect',
].map((e) => `syscalls:${e}`)

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[s.length >> 1]!
}

/** Connects to `port`, writes one byte, resolves with the ms until the echo. */
function roundTrip(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const s = connect({ host: '127.0.0.1', port, noDelay: true })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error('no echo within 10 s'))
    }, 10_000)
    s.once('connect', () => s.write('x'))
    s.once('data', () => {
      clearTimeout(timer)
      s.destroy()
      resolve(performance.now() - t0)
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

function parseTrace(text: string): TraceEvent[] {
  const out: TraceEvent[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+([\d.]+):\s+syscalls:(\w+):\s*(.*)$/.exec(line)
    if (m !== null) out.push({ pid: Number(m[1]), t: Number(m[2]) * 1e6, name: m[3]!, args: m[4]! })
  }
  return out
}

/** The offsets (µs after B's accept) of each step, per connection, from the daemons' events in time order. */
function offsets(events: TraceEvent[], pids: { A: number; B: number }): number[][] {
  const per: number[][] = STEPS.map(() => [])
  for (let i = 0; i < events.length; i++) {
    const start = events[i]!
    if (start.pid !== pids.B || start.name !== 'sys_enter_accept4') continue
    let k = 0
    for (let j = i + 1; j < events.length && k < STEPS.length; j++) {
      const e = events[j]!
      if (e.pid === pids.B && e.name === 'sys_enter_accept4') break // the next connection
      const [, end, name, test] = STEPS[k]!
      if (e.pid === pids[end] && e.name === name && (test === undefined || test(e.args))) {
        per[k]!.push(e.t - start.t)
        k++
      }
    }
  }
  return per
}

export async function setupPath(o: { connections: number; warmup: number; dir: string }): Promise<{
  p50Ms: number
  connections: number
  steps: { step: string; offsetUs: number; sinceBeforeUs: number; samples: number }[]
}> {
  const echo = createServer((s) => {
    s.on('error', () => {})
    s.pipe(s)
  }).listen(0, '127.0.0.1')
  await new Promise((r) => echo.once('listening', r))
  const pair = await startPair({ echo: (echo.address() as { port: number }).port })
  try {
    const port = pair.forwards.echo!.port
    for (let i = 0; i < o.warmup; i++) await roundTrip(port)
    const [A, B] = pair.daemons.map((d) => d.proc.pid as number) as [number, number]
    const data = join(o.dir, 'setup-path.perf.data')
    const perf = spawn('perf', ['record', '-q', '-o', data, '-e', TRACEPOINTS.join(','), '-p', `${A},${B}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let perfErr = ''
    perf.stderr.on('data', (d: Buffer) => {
      perfErr += d.toString()
    })
    const exited = new Promise<number | null>((r) => perf.once('exit', (code) => r(code)))
    perf.once('error', (err) => {
      perfErr += err.message
    })
    await new Promise((r) => setTimeout(r, 1500))
    if (perf.exitCode !== null || perfErr !== '') throw new Error(`perf record failed: ${perfErr.trim()}`)
    const ms: number[] = []
    for (let i = 0; i < o.connections; i++) ms.push(await roundTrip(port))
    perf.kill('SIGINT')
    await exited
    const text = execFileSync('perf', ['script', '-i', data, '-F', 'pid,time,event,trace'], {
      maxBuffer: 1 << 28,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString()
    const per = offsets(parseTrace(text), { A, B })
    let before = 0
    const steps = STEPS.map(([label], k) => {
      const offsetUs = Math.round(median(per[k]!))
      const row = { step: label, offsetUs, sinceBeforeUs: offsetUs - before, samples: per[k]!.length }
      before = offsetUs
      return row
    })
    return { p50Ms: Math.round(median(ms) * 1000) / 1000, connections: o.connections, steps }
  } finally {
    await pair.stop()
    echo.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  helpIfAsked(import.meta.url)
  const { values: args } = parseArgs({
    options: {
      connections: { type: 'string', default: '1500' },
      warmup: { type: 'string', default: '1500' },
      out: { type: 'string' },
    },
  })
  const date = new Date().toISOString().slice(0, 10)
  const out = args.out ?? fileURLToPath(new URL(`results/${date}-setup-path.json`, import.meta.url))
  const dir = await mkdtemp(join(tmpdir(), 'warren-setup-path-'))
  const r = await setupPath({ connections: Number(args.connections), warmup: Number(args.warmup), dir }).finally(() =>
    rm(dir, { recursive: true, force: true }),
  )
  process.stdout.write(`new connection p50 ${r.p50Ms} ms over ${r.connections} (with the tracepoints on)\n`)
  for (const s of r.steps) {
    process.stdout.write(
      `${`+${s.offsetUs}`.padStart(7)} µs  ${`(+${s.sinceBeforeUs})`.padStart(7)}  ${s.step}${s.samples < r.connections ? `  (${s.samples} samples)` : ''}\n`,
    )
  }
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, `${JSON.stringify({ started: new Date().toISOString(), ...r }, null, 2)}\n`)
  process.stdout.write(`written: ${out}\n`)
}
