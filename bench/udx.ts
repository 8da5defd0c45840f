/**
 * Direct-path micro-benchmark on loopback (no NAT lab): one stream between two processes, over
 *
 * - `udx-raw`: a raw udx-native stream (Warren's open handshake, no Noise, no Yamux): the ceiling,
 * - `udx`: two libp2p nodes with Warren's UDX transport (Noise + Yamux over one UDX stream, as on a direct path),
 * - `tcp`: the same two libp2p nodes over TCP,
 *
 * `--mib` MiB up and down, `--reps` times, the modes interleaved. Prints MiB/s (median, best) and CPU seconds per GiB
 * of both processes, the figure least disturbed by other load on the machine.
 *
 *   node bench/udx.ts [--mib 256] [--reps 3] [--modes udx-raw,udx,tcp] [--profile dir]
 *
 * `--profile <dir>` writes V8 CPU profiles of every peer process there (summarize with `node bench/profile.ts <dir>`).
 */
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { helpIfAsked } from './help.ts'
import { Child } from './proc.ts'
import { formatTable, MiB, median, mibPerSec } from './stats.ts'

helpIfAsked(import.meta.url)
const { values: args } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    reps: { type: 'string', default: '3' },
    modes: { type: 'string', default: 'udx-raw,udx,tcp' },
    profile: { type: 'string' },
  },
})
const BYTES = Number(args.mib) * MiB
const REPS = Number(args.reps)
const TIMEOUT = 300_000
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))

const PEERS = {
  'udx-raw': { script: 'udx-raw-peer.ts', listen: [] as string[], label: 'raw udx-native stream' },
  udx: { script: 'libp2p-peer.ts', listen: ['udx'], label: 'libp2p over UDX (Noise+Yamux)' },
  tcp: { script: 'libp2p-peer.ts', listen: ['tcp'], label: 'libp2p over TCP (Noise+Yamux)' },
}
type Mode = keyof typeof PEERS

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${msg}\n`)
}

interface Pair {
  dialer: Child
  listener: Child
}

async function startPair(mode: Mode, children: Child[]): Promise<Pair> {
  const env: NodeJS.ProcessEnv =
    args.profile === undefined ? {} : { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${args.profile}/${mode}` }
  const { script, listen } = PEERS[mode]
  const listener = new Child(`${mode} listener`, [here(script), 'listen', ...listen], env)
  children.push(listener)
  const { addr } = await listener.next<{ addr: string }>(30_000)
  const dialer = new Child(`${mode} dialer`, [here(script), 'dial', addr], env)
  children.push(dialer)
  await dialer.next(30_000)
  return { dialer, listener }
}

const cpuOf = (p: Pair): number => p.dialer.cpuSeconds() + p.listener.cpuSeconds()

async function main(): Promise<void> {
  const modes = args.modes.split(',') as Mode[]
  for (const m of modes)
    if (!(m in PEERS)) throw new Error(`unknown mode ${m}; modes: ${Object.keys(PEERS).join(', ')}`)
  const children: Child[] = []
  try {
    const pairs = new Map<Mode, Pair>()
    for (const m of modes) pairs.set(m, await startPair(m, children))
    for (const [, p] of pairs) {
      await p.dialer.request(`up ${16 * MiB}`, TIMEOUT)
      await p.dialer.request(`down ${16 * MiB}`, TIMEOUT)
    }
    const raw = new Map(modes.map((m) => [m, { up: [] as number[], down: [] as number[], cpu: [] as number[] }]))
    for (let rep = 1; rep <= REPS; rep++) {
      for (const m of modes) {
        const p = pairs.get(m)!
        const r = raw.get(m)!
        const cpu0 = cpuOf(p)
        const up = mibPerSec(BYTES, (await p.dialer.request<{ ms: number }>(`up ${BYTES}`, TIMEOUT)).ms)
        const cpu1 = cpuOf(p)
        const down = mibPerSec(BYTES, (await p.dialer.request<{ ms: number }>(`down ${BYTES}`, TIMEOUT)).ms)
        const cpu2 = cpuOf(p)
        const gib = BYTES / (1024 * MiB)
        r.up.push(up)
        r.down.push(down)
        r.cpu.push((cpu1 - cpu0) / gib, (cpu2 - cpu1) / gib)
        log(`rep ${rep} ${m.padEnd(7)} up ${up} MiB/s, down ${down} MiB/s`)
      }
    }
    const rows = [['path', 'up MiB/s', '(best)', 'down MiB/s', '(best)', 'CPU s/GiB']]
    for (const m of modes) {
      const r = raw.get(m)!
      rows.push([
        PEERS[m].label,
        median(r.up).toFixed(1),
        Math.max(...r.up).toFixed(1),
        median(r.down).toFixed(1),
        Math.max(...r.down).toFixed(1),
        median(r.cpu).toFixed(2),
      ])
    }
    const load = loadavg().map((x) => x.toFixed(2))
    process.stdout.write(
      `\n${formatTable(rows)}\n\n${args.mib} MiB per transfer on 127.0.0.1, median (and best) of ${REPS}; CPU s/GiB: both ` +
        `processes, median over up and down (load average now ${load.join(' ')}, ${cpus().length} CPUs)\n`,
    )
  } finally {
    await Promise.all(children.map((c) => c.stop()))
    if (args.profile !== undefined) log(`CPU profiles in ${args.profile}/<mode>; node bench/profile.ts <that dir>`)
  }
}

await main()
process.exit(0)
