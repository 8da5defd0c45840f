/**
 * `node bench/encrypters.ts`: the secure channel between two nodes — Noise against TLS 1.3 as the connection
 * encrypter, in Warren's libp2p stack and in stock js-libp2p, and QUIC in place of TCP, the encrypter and Yamux. Each
 * variant is a listener and a dialer (bench/libp2p-peer.ts, real processes on loopback); in interleaved rounds each
 * runs:
 *
 * - bulk: `--bulk` MiB through one stream each way (the listener counts the bytes it got), MiB/s and CPU seconds per
 *   GiB of each end;
 * - requests: 64 streams at once, each `--exchanges` round trips of 100 bytes one after another (every echo checked
 *   for its length), round trips per second and CPU µs per round trip of each end;
 * - connections: `--connections` new connections one after another (dial, the encrypter's handshake, Yamux, one
 *   byte echoed on a new stream, close), p50 ms and CPU µs per connection of each end;
 * - a paused reader: a 64 MiB download whose reader pauses for its first 2 s (its read buffer is libp2p's default,
 *   4 MiB): the bytes it got and how the stream ended. Where flow control holds the sender back, every byte arrives.
 *
 * Variants (`--variants`, default all): `noise` (Warren's stack: its Noise cipher, write coalescing and Yamux
 * batching), `tls` (Warren's stack with `@libp2p/tls` instead of Noise), `stock-noise`, `stock-tls` (stock js-libp2p),
 * `quic` (Warren's stack over `@chainsafe/libp2p-quic`: QUIC's TLS 1.3 and streams, in Rust, instead of TCP, Noise
 * and Yamux). Neither package is a dependency of Warren: `npm install --no-save @libp2p/tls@3.1.10
 * @chainsafe/libp2p-quic@2.1.1`; a variant whose package is missing is reported as not measured. Results go to
 * `bench/results/<date>-encrypters.json`.
 *
 *   node bench/encrypters.ts [--rounds 3] [--bulk 256] [--exchanges 2000] [--connections 200]
 *     [--variants noise,tls,stock-noise,stock-tls,quic] [--out bench/results/<date>-encrypters.json]
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { argsOrExit, helpIfAsked } from './help.ts'
import { Child } from './proc.ts'
import { MiB, median, quantile } from './stats.ts'

export const VARIANTS = ['noise', 'tls', 'stock-noise', 'stock-tls', 'quic'] as const
export type Variant = (typeof VARIANTS)[number]

export interface EncrypterRound {
  variant: Variant
  round: number
  upMiBps: number
  downMiBps: number
  /** CPU seconds per GiB moved, dialer / listener, over both directions. */
  bulkCpuSPerGiB: { dialer: number; listener: number }
  exchangesPerS: number
  cpuUsPerExchange: { dialer: number; listener: number }
  connectP50Ms: number
  connectP99Ms: number
  cpuUsPerConnection: { dialer: number; listener: number }
  /** The paused reader's download: MiB it got of 64, and how it ended ("every byte" or the stream's error). */
  pausedReader: { gotMiB: number; ended: string }
  loadAverage: number
}

/** The paused reader's download, MiB. */
const PAUSED_MIB = 64

const PEER = fileURLToPath(new URL('libp2p-peer.ts', import.meta.url))
const round2 = (x: number): number => Math.round(x * 100) / 100

/** The package each variant needs beyond Warren's dependencies, at the version measured. */
const EXTRA: Partial<Record<Variant, string>> = {
  tls: '@libp2p/tls@3.1.10',
  'stock-tls': '@libp2p/tls@3.1.10',
  quic: '@chainsafe/libp2p-quic@2.1.1',
}

/** Why a variant cannot run here (its package does not resolve), or undefined when it can. */
export function variantMissing(variant: Variant): string | undefined {
  const pkg = EXTRA[variant]
  if (pkg === undefined) return undefined
  const name = pkg.slice(0, pkg.lastIndexOf('@'))
  try {
    import.meta.resolve(name)
    return undefined
  } catch {
    return `${name} is not installed (npm install --no-save ${pkg})`
  }
}

async function runVariant(
  variant: Variant,
  round: number,
  opts: { bulkMiB: number; exchanges: number; connections: number },
): Promise<EncrypterRound> {
  const env = {
    WARREN_BENCH_STOCK: variant.startsWith('stock') ? '1' : '0',
    WARREN_BENCH_ENCRYPTER: variant.endsWith('tls') ? 'tls' : 'noise',
  }
  const listener = new Child(`${variant} listener`, [PEER, 'listen', variant === 'quic' ? 'quic' : 'tcp'], env)
  let dialer: Child | undefined
  try {
    const { addr } = await listener.next<{ addr: string }>(30_000)
    dialer = new Child(`${variant} dialer`, [PEER, 'dial', addr], env)
    await dialer.next(30_000)
    const d = dialer
    /** Runs one command and the CPU seconds both ends used meanwhile. */
    const measured = async <T>(line: string): Promise<{ answer: T; dialer: number; listener: number }> => {
      const c0 = [d.cpuSeconds(), listener.cpuSeconds()]
      const answer = await d.request<T>(line, 600_000)
      return { answer, dialer: d.cpuSeconds() - c0[0]!, listener: listener.cpuSeconds() - c0[1]! }
    }
    const bytes = opts.bulkMiB * MiB
    const up = await measured<{ ms: number }>(`up ${bytes}`)
    const down = await measured<{ ms: number }>(`down ${bytes}`)
    const gib = (2 * bytes) / 1024 ** 3
    const rr = await measured<{ ms: number; exchanges: number }>(`rr ${opts.exchanges}`)
    const conns = await measured<{ samples: number[] }>(`connect ${opts.connections}`)
    const paused = await d.request<{ got: number; ended: string }>(`pause ${PAUSED_MIB * MiB}`, 600_000)
    return {
      variant,
      round,
      upMiBps: Math.round(opts.bulkMiB / (up.answer.ms / 1000)),
      downMiBps: Math.round(opts.bulkMiB / (down.answer.ms / 1000)),
      bulkCpuSPerGiB: {
        dialer: round2((up.dialer + down.dialer) / gib),
        listener: round2((up.listener + down.listener) / gib),
      },
      exchangesPerS: Math.round(rr.answer.exchanges / (rr.answer.ms / 1000)),
      cpuUsPerExchange: {
        dialer: round2((rr.dialer * 1e6) / rr.answer.exchanges),
        listener: round2((rr.listener * 1e6) / rr.answer.exchanges),
      },
      connectP50Ms: round2(quantile(conns.answer.samples, 0.5)),
      connectP99Ms: round2(quantile(conns.answer.samples, 0.99)),
      cpuUsPerConnection: {
        dialer: Math.round((conns.dialer * 1e6) / opts.connections),
        listener: Math.round((conns.listener * 1e6) / opts.connections),
      },
      pausedReader: { gotMiB: round2(paused.got / MiB), ended: paused.ended },
      loadAverage: round2(loadavg()[0]!),
    }
  } finally {
    await dialer?.stop()
    await listener.stop()
  }
}

/** The median of each figure over a variant's rounds, with its range. */
export function summary(rounds: EncrypterRound[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {}
  const fig = (xs: number[]): string => `${round2(median(xs))} [${round2(Math.min(...xs))}-${round2(Math.max(...xs))}]`
  for (const v of new Set(rounds.map((r) => r.variant))) {
    const rs = rounds.filter((r) => r.variant === v)
    out[v] = {
      'bulk up MiB/s': fig(rs.map((r) => r.upMiBps)),
      'bulk down MiB/s': fig(rs.map((r) => r.downMiBps)),
      'bulk CPU s/GiB dialer': fig(rs.map((r) => r.bulkCpuSPerGiB.dialer)),
      'bulk CPU s/GiB listener': fig(rs.map((r) => r.bulkCpuSPerGiB.listener)),
      'round trips/s': fig(rs.map((r) => r.exchangesPerS)),
      'CPU µs/round trip dialer': fig(rs.map((r) => r.cpuUsPerExchange.dialer)),
      'CPU µs/round trip listener': fig(rs.map((r) => r.cpuUsPerExchange.listener)),
      'new connection p50 ms': fig(rs.map((r) => r.connectP50Ms)),
      'CPU µs/connection dialer': fig(rs.map((r) => r.cpuUsPerConnection.dialer)),
      'CPU µs/connection listener': fig(rs.map((r) => r.cpuUsPerConnection.listener)),
      [`paused reader, ${PAUSED_MIB} MiB`]: [
        ...new Set(rs.map((r) => `${r.pausedReader.gotMiB} MiB, ${r.pausedReader.ended}`)),
      ].join('; '),
    }
  }
  return out
}

if (import.meta.url === `file://${process.argv[1]}`) {
  helpIfAsked(import.meta.url)
  const parsed = argsOrExit('encrypters', {
    options: {
      rounds: { type: 'string', default: '3' },
      bulk: { type: 'string', default: '256' },
      exchanges: { type: 'string', default: '2000' },
      connections: { type: 'string', default: '200' },
      variants: { type: 'string', default: VARIANTS.join(',') },
      out: { type: 'string' },
    },
  })
  const args = parsed.values
  const counts = [args.rounds, args.bulk, args.exchanges, args.connections].map(Number)
  if (counts.some((n) => !Number.isInteger(n) || n < 1)) {
    process.stderr.write('encrypters: --rounds, --bulk, --exchanges and --connections take whole numbers from 1\n')
    process.exit(2)
  }
  const asked = args.variants.split(',')
  const unknown = asked.filter((v) => !(VARIANTS as readonly string[]).includes(v))
  if (unknown.length > 0 || asked.length === 0) {
    process.stderr.write(`encrypters: unknown variant ${unknown.join(', ')}; the variants are ${VARIANTS.join(', ')}\n`)
    process.exit(2)
  }
  const notMeasured: Record<string, string> = {}
  const variants = (asked as Variant[]).filter((v) => {
    const missing = variantMissing(v)
    if (missing === undefined) return true
    notMeasured[v] = missing
    process.stdout.write(`${v}: not measured: ${missing}\n`)
    return false
  })
  const [rounds, bulkMiB, exchanges, connections] = counts as [number, number, number, number]
  const results: EncrypterRound[] = []
  try {
    for (let round = 1; round <= rounds; round++) {
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + round - 1) % variants.length]!
        const r = await runVariant(v, round, { bulkMiB, exchanges, connections })
        results.push(r)
        process.stdout.write(
          `round ${round} ${v}: bulk ${r.upMiBps} / ${r.downMiBps} MiB/s (CPU s/GiB ${r.bulkCpuSPerGiB.dialer} / ` +
            `${r.bulkCpuSPerGiB.listener}), ${r.exchangesPerS} round trips/s (CPU µs ${r.cpuUsPerExchange.dialer} / ` +
            `${r.cpuUsPerExchange.listener}), new connection p50 ${r.connectP50Ms} ms (CPU µs ` +
            `${r.cpuUsPerConnection.dialer} / ${r.cpuUsPerConnection.listener}), paused reader ` +
            `${r.pausedReader.gotMiB} of ${PAUSED_MIB} MiB: ${r.pausedReader.ended} (load ${r.loadAverage})\n`,
        )
      }
    }
  } catch (err) {
    process.stderr.write(`encrypters: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  }
  const medians = summary(results)
  for (const [v, figs] of Object.entries(medians)) {
    process.stdout.write(
      `\n${v}\n${Object.entries(figs)
        .map(([k, x]) => `  ${k}: ${x}`)
        .join('\n')}\n`,
    )
  }
  const date = new Date().toISOString().slice(0, 10)
  const out = args.out ?? fileURLToPath(new URL(`results/${date}-encrypters.json`, import.meta.url))
  await mkdir(dirname(out), { recursive: true })
  const options = { rounds, bulkMiB, exchanges, connections, variants: asked }
  await writeFile(
    out,
    `${JSON.stringify({ started: new Date().toISOString(), options, notMeasured, medians, rounds: results }, null, 2)}\n`,
  )
  process.stdout.write(`written: ${out}\n`)
}
