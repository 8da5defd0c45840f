/**
 * `node bench/setup-pause.ts`: new forwarded connections before and after a pause. Two Warren daemons on loopback
 * (bench/warren-pair.ts) forward an echo server in this process; after `--settle` seconds (past the daemons'
 * start-up trim) and `--warmup` unmeasured connections, each cycle runs `--connections` sequential connect + 1-byte
 * echo round trips (the set-up workload of `npm run bench:peers`), pauses `--pause` seconds, and runs as many again.
 * For each block: the p50 of each quarter of it, in ms; the CPU per connection of each daemon's main thread and of
 * its other threads (V8's compiler and collector threads; /proc/<pid>/task/<tid>/schedstat); and, from the daemons'
 * `--trace-deopt` and `--trace-gc` output, the optimized functions thrown away ("embedded weak objects cleared") and
 * the major collections, during the block and during the pause before it.
 *
 * `--node-args` passes V8 flags to both daemons (`--node-args=--no-memory-reducer`; several separated by spaces).
 *
 *   node bench/setup-pause.ts [--pause 45] [--cycles 2] [--connections 200] [--warmup 1500] [--settle 20]
 *     [--node-args=--no-memory-reducer] [--out bench/results/<date>-setup-pause.json]
 */
import { readdirSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { argsOrExit, helpIfAsked } from './help.ts'
import { startPair } from './warren-pair.ts'
import { tcpSetup } from './xfer.ts'

helpIfAsked(import.meta.url)
const { values: args } = argsOrExit('setup-pause', {
  options: {
    pause: { type: 'string', default: '45' },
    cycles: { type: 'string', default: '2' },
    connections: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '1500' },
    settle: { type: 'string', default: '20' },
    'node-args': { type: 'string', default: '' },
    out: { type: 'string' },
  },
})
const [pauseS, cycles, count, warmup, settleS] = [
  args.pause,
  args.cycles,
  args.connections,
  args.warmup,
  args.settle,
].map(Number) as [number, number, number, number, number]

/** CPU time of a process's main thread and of its other threads, ns. */
function threadCpu(pid: number): { main: number; other: number } {
  const out = { main: 0, other: 0 }
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    if (Number(tid) === pid) out.main += ns
    else out.other += ns
  }
  return out
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

interface Block {
  label: string
  /** p50 of each quarter of the block, ms. */
  quarterP50: number[]
  p50: number
  /** µs of CPU per connection: [A, B] × main thread / other threads. */
  cpuMain: number[]
  cpuOther: number[]
  /** [A, B]: optimized functions thrown away because objects they were specialized on died; major collections. */
  deopts: number[]
  majorGcs: number[]
  /** The same counts over the pause before the block (none for a block that follows another). */
  pauseDeopts?: number[]
  pauseMajorGcs?: number[]
}

const echo = createServer((s) => {
  s.on('error', () => {})
  s.pipe(s)
})
await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()))
const pair = await startPair(
  { echo: (echo.address() as { port: number }).port },
  {},
  { nodeArgs: ['--trace-deopt', '--trace-gc', ...args['node-args'].split(/\s+/).filter(Boolean)] },
)
const traces = pair.daemons.map(() => ({ deopts: 0, majors: 0 }))
pair.daemons.forEach((d, k) => {
  let rest = ''
  d.proc.stdout!.on('data', (b: Buffer) => {
    const lines = (rest + b.toString()).split('\n')
    rest = lines.pop()!
    for (const l of lines) {
      if (l.includes('reason: embedded weak objects cleared')) traces[k]!.deopts++
      else if (/: Mark-Compact/.test(l)) traces[k]!.majors++
    }
  })
})
const snap = () => traces.map((t) => ({ ...t }))
const since = (before: { deopts: number; majors: number }[]) => ({
  deopts: traces.map((t, k) => t.deopts - before[k]!.deopts),
  majorGcs: traces.map((t, k) => t.majors - before[k]!.majors),
})

const f = pair.forwards.echo!
const pids = pair.daemons.map((d) => d.proc.pid!)
async function block(label: string): Promise<Block> {
  const traced = snap()
  const c0 = pids.map(threadCpu)
  const ms = await tcpSetup(f.host, f.port, count, 120_000)
  const c1 = pids.map(threadCpu)
  const q = Math.floor(ms.length / 4)
  return {
    label,
    quarterP50: [0, 1, 2, 3].map((i) => median(ms.slice(i * q, (i + 1) * q))),
    p50: median(ms),
    cpuMain: pids.map((_, k) => (c1[k]!.main - c0[k]!.main) / count / 1000),
    cpuOther: pids.map((_, k) => (c1[k]!.other - c0[k]!.other) / count / 1000),
    ...since(traced),
  }
}

const blocks: Block[] = []
try {
  await new Promise((r) => setTimeout(r, settleS * 1000))
  await tcpSetup(f.host, f.port, warmup, 300_000)
  for (let c = 0; c < cycles; c++) {
    blocks.push(await block(`before pause ${c + 1}`))
    const traced = snap()
    await new Promise((r) => setTimeout(r, pauseS * 1000))
    const paused = since(traced)
    blocks.push({
      ...(await block(`after pause ${c + 1}`)),
      pauseDeopts: paused.deopts,
      pauseMajorGcs: paused.majorGcs,
    })
  }
} finally {
  await pair.stop()
  echo.close()
}

const fmt = (xs: number[], d = 0) => xs.map((x) => x.toFixed(d)).join(' / ')
process.stdout.write(
  `new connections through a pair of daemons, ${pauseS} s pauses, ${count} per block after ${warmup} unmeasured\n` +
    'block            p50 ms  p50 by quarter           CPU µs A / B: main  other   thrown away A / B (pause)  major GCs (pause)\n',
)
for (const b of blocks) {
  process.stdout.write(
    `${b.label.padEnd(16)} ${b.p50.toFixed(2).padStart(6)}  ${fmt(b.quarterP50, 2).padEnd(24)} ${fmt(b.cpuMain).padEnd(11)} ${fmt(b.cpuOther).padEnd(11)} ` +
      `${fmt(b.deopts)}${b.pauseDeopts ? ` (${fmt(b.pauseDeopts)})` : ''}`.padEnd(27) +
      `${fmt(b.majorGcs)}${b.pauseMajorGcs ? ` (${fmt(b.pauseMajorGcs)})` : ''}\n`,
  )
}
if (args.out !== undefined) {
  await writeFile(
    args.out,
    `${JSON.stringify({ started: new Date().toISOString(), options: { pauseS, cycles, count, warmup, settleS, nodeArgs: args['node-args'] }, blocks }, null, 2)}\n`,
  )
  process.stdout.write(`written: ${args.out}\n`)
}
