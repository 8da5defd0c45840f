/**
 * Transparent mode against the other ways in, in one run: connection set-up (p50/p99, connect → first byte echoed,
 * over an established peer connection) and throughput up and down (MiB/s, median of `--reps`) through
 *
 * - `tcp`: the echo/xfer servers directly (the baseline),
 * - `transparent`: a connection to the service address (`echo.a.warren` resolved once through the system resolver),
 * - `socks`: SOCKS5 CONNECT to `echo.a.warren` through the access port,
 * - `forward`: a `warren forward` port.
 *
 * Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN): it builds a network namespace of its own (only `lo`), runs two
 * daemons (a with the servers as services, b with --transparent) and itself inside it, and deletes it at the end;
 * the host's network is not touched. `npm run bench` runs it after the forward benchmark (bench/run.ts,
 * `--no-transparent` to leave it out) through {@link runTransparentBench}; it is skipped, saying why, without root or nft.
 *
 *   node bench/transparent.ts [--mib 256] [--reps 3] [--connections 300] [--out bench/results/x.json]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { WarrenClient } from '../src/client/client.ts'
import { resolveHome } from '../src/config/home.ts'
import { generateNodeKey, saveNodeKey } from '../src/identity/keys.ts'
import { helpIfAsked } from './help.ts'
import { formatTable, type LatencySummary, MiB, median, mibPerSec, summarize } from './stats.ts'
import { CHUNK, encodeRequest, PAYLOAD } from './xfer.ts'

export interface TransparentBenchOptions {
  mib: number
  reps: number
  connections: number
  /** The results file (default bench/results/<date>-transparent.json). */
  out?: string
}

const NODE = process.execPath
const SELF = fileURLToPath(import.meta.url)
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const TIMEOUT_MS = 300_000

type Mode = 'tcp' | 'transparent' | 'socks' | 'forward'
const MODES: Mode[] = ['tcp', 'transparent', 'socks', 'forward']

/** Why the benchmark cannot run here (it needs root and nft), or undefined. */
export function transparentBenchSkip(): string | undefined {
  if (process.platform !== 'linux') return 'transparent mode needs Linux'
  if (process.getuid?.() !== 0) return 'needs root (network namespace, nftables)'
  if (spawnSync('nft', ['--version'], { stdio: 'ignore' }).status !== 0)
    return 'nft (Debian package nftables) is missing'
  return undefined
}

/**
 * Builds the namespace, runs this script inside it, deletes the namespace (and its resolv.conf) in every case.
 * Rejects when the run inside fails.
 */
export async function runTransparentBench(opts: TransparentBenchOptions): Promise<void> {
  const date = new Date().toISOString().slice(0, 10)
  const out = opts.out ?? fileURLToPath(new URL(`results/${date}-transparent.json`, import.meta.url))
  await mkdir(dirname(out), { recursive: true })
  const ns = `wtpb-${process.pid}-${randomBytes(2).toString('hex')}`
  const ip = (...a: string[]): void => {
    const r = spawnSync('ip', a, { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr.trim()} (run as root)`)
  }
  ip('netns', 'add', ns)
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    await mkdir(`/etc/netns/${ns}`, { recursive: true })
    await writeFile(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n')
    const argv = ['netns', 'exec', ns, NODE, SELF, '--inside', '--mib', String(opts.mib), '--reps', String(opts.reps)]
    argv.push('--connections', String(opts.connections), '--out', out)
    const child = spawn('ip', argv, { stdio: 'inherit' })
    const code = await new Promise<number | null>((r) => child.on('exit', r))
    if (code !== 0) throw new Error(`the transparent benchmark failed inside namespace ${ns} (exit ${code})`)
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
    await rm(`/etc/netns/${ns}`, { recursive: true, force: true })
    spawnSync('rmdir', ['/etc/netns'], { stdio: 'ignore' })
  }
}

async function inside(args: Required<TransparentBenchOptions>): Promise<void> {
  const children: ChildProcess[] = []
  const homes: string[] = []
  const stopAll = async (): Promise<void> => {
    for (const c of children) c.kill('SIGTERM')
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.on('exit', r)) : undefined)))
    for (const h of homes) await rm(h, { recursive: true, force: true })
  }
  try {
    const servers = spawn(NODE, [fileURLToPath(new URL('./servers.ts', import.meta.url))], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    children.push(servers)
    const ports = JSON.parse(await firstLine(servers)) as { xfer: number; echo: number }
    const a = await daemon(children, homes, {
      services: {
        echo: { target: `/tcp/${ports.echo}`, allow: ['*'] },
        xfer: { target: `/tcp/${ports.xfer}`, allow: ['*'] },
      },
    })
    const ticket = (await a.id()).ticket
    const b = await daemon(
      children,
      homes,
      { peers: { a: ticket }, dns: { enabled: true, listen: '127.0.0.1:53' }, proxy: { listen: '127.0.0.1:4780' } },
      ['--transparent'],
    )
    const fwdEcho = await b.forwardAdd({ node: 'a', service: 'echo', listen: '127.0.0.1:0' })
    const fwdXfer = await b.forwardAdd({ node: 'a', service: 'xfer', listen: '127.0.0.1:0' })
    const echoAddr = (await lookup('echo.a.warren', { family: 4 })).address
    const xferAddr = (await lookup('xfer.a.warren', { family: 4 })).address
    const port = (listen: string): number => Number(listen.slice(listen.lastIndexOf(':') + 1))
    const dial: Record<Mode, (svc: 'echo' | 'xfer') => Promise<Socket>> = {
      tcp: (svc) => tcp('127.0.0.1', svc === 'echo' ? ports.echo : ports.xfer),
      transparent: (svc) => tcp(svc === 'echo' ? echoAddr : xferAddr, svc === 'echo' ? 7 : 9000),
      socks: (svc) => socks('127.0.0.1', 4780, `${svc}.a.warren`, 80),
      forward: (svc) => tcp('127.0.0.1', port(svc === 'echo' ? fwdEcho.listen : fwdXfer.listen)),
    }
    const bytes = Number(args.mib) * MiB
    const setup = {} as Record<Mode, LatencySummary>
    const up = {} as Record<Mode, number[]>
    const down = {} as Record<Mode, number[]>
    const samples = {} as Record<Mode, number[]>
    for (const m of MODES) {
      await setupSamples(dial[m], 20) // warm-up: peer connection, JIT
      samples[m] = []
      up[m] = []
      down[m] = []
    }
    // interleaved, so a noisy neighbour hits every path alike
    const deadline = Date.now() + TIMEOUT_MS
    for (let i = 0; i < Number(args.connections) && Date.now() < deadline; i++) {
      for (const m of MODES) samples[m]!.push(...(await setupSamples(dial[m], 1)))
    }
    for (const m of MODES) setup[m] = summarize(samples[m]!)
    for (let r = 0; r < Number(args.reps); r++) {
      for (const m of MODES) up[m]!.push(mibPerSec(bytes, await upload(await dial[m]('xfer'), bytes)))
      for (const m of MODES) down[m]!.push(mibPerSec(bytes, await download(await dial[m]('xfer'), bytes)))
    }
    const rows = [['path', 'set-up p50 ms', 'set-up p99 ms', 'up MiB/s', 'down MiB/s', 'up vs socks', 'up vs forward']]
    for (const m of MODES) {
      const mibs = median(up[m]!)
      rows.push([
        m,
        setup[m].p50.toFixed(2),
        setup[m].p99.toFixed(2),
        mibs.toFixed(0),
        median(down[m]!).toFixed(0),
        (mibs / median(up.socks)).toFixed(2),
        (mibs / median(up.forward)).toFixed(2),
      ])
    }
    process.stdout.write(`${formatTable(rows)}\n`)
    const result = {
      mib: Number(args.mib),
      reps: Number(args.reps),
      connections: Number(args.connections),
      setup,
      upload: up,
      download: down,
    }
    await writeFile(args.out, `${JSON.stringify(result, null, 2)}\n`)
    process.stdout.write(`written to ${args.out}\n`)
    a.close()
    b.close()
  } finally {
    await stopAll()
  }
}

async function daemon(
  children: ChildProcess[],
  homes: string[],
  config: object,
  flags: string[] = [],
): Promise<WarrenClient> {
  const dir = await mkdtemp(join(tmpdir(), 'wtb-'))
  homes.push(dir)
  const home = resolveHome(dir)
  await saveNodeKey(home.key, await generateNodeKey())
  const base = {
    listen: ['/ip4/127.0.0.1/tcp/0'],
    traversal: { udpListen: ['/ip4/127.0.0.1/udp/0'] },
    proxy: { listen: '127.0.0.1:0' },
  }
  await writeFile(home.config, JSON.stringify({ ...base, ...config }))
  const child = spawn(NODE, [MAIN, 'up', ...flags], {
    env: { ...process.env, WARREN_HOME: dir, WARREN_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  children.push(child)
  let log = ''
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString()
  })
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      return await WarrenClient.connect({ home })
    } catch (err) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`daemon did not start: ${(err as Error).message}\n${log}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')))
    })
    child.once('exit', () => reject(new Error('servers exited')))
  })
}

function tcp(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true })
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

/** SOCKS5 CONNECT by name (no authentication); resolves with the tunnel once the server says it is up. */
async function socks(host: string, port: number, name: string, dstPort: number): Promise<Socket> {
  const s = await tcp(host, port)
  const n = Buffer.from(name)
  s.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, n.length]), n, Buffer.from([dstPort >> 8, dstPort & 255])]))
  await new Promise<void>((resolve, reject) => {
    let got = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d])
      if (got.length < 2 + 5) return
      const len = got[5] === 1 ? 10 : got[5] === 4 ? 22 : 7 + got[6]!
      if (got.length < 2 + len) return
      s.off('data', onData)
      if (got[3] !== 0) reject(new Error(`SOCKS5 reply ${got[3]}`))
      else resolve()
    }
    s.on('data', onData)
    s.once('error', reject)
  })
  return s
}

/** Connect → first echoed byte, `count` times one after another, ms. */
async function setupSamples(dial: (svc: 'echo') => Promise<Socket>, count: number): Promise<number[]> {
  const samples: number[] = []
  const deadline = Date.now() + TIMEOUT_MS
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    const t0 = performance.now()
    const s = await dial('echo')
    await new Promise<void>((resolve, reject) => {
      s.once('data', () => resolve())
      s.once('error', reject)
      s.write('x')
    })
    samples.push(performance.now() - t0)
    s.destroy()
  }
  return samples
}

/** One `D` transfer of `bytes` on a connected socket; ms from the request to the last byte. */
async function download(s: Socket, bytes: number): Promise<number> {
  const t0 = performance.now()
  await new Promise<void>((resolve, reject) => {
    let got = 0
    s.on('data', (d: Buffer) => {
      got += d.length
      if (got === bytes) resolve()
      if (got > bytes) reject(new Error(`received ${got} bytes, asked for ${bytes}`))
    })
    s.once('error', reject)
    s.once('end', () => reject(new Error(`ended after ${got} of ${bytes} bytes`)))
    s.write(encodeRequest('D', bytes))
  })
  const ms = performance.now() - t0
  s.destroy()
  return ms
}

/** One `U` transfer of `bytes` on a connected socket; ms until the server counted them all. */
async function upload(s: Socket, bytes: number): Promise<number> {
  const t0 = performance.now()
  const answer = new Promise<void>((resolve, reject) => {
    s.once('data', () => resolve())
    s.once('error', reject)
    s.once('end', () => resolve())
  })
  s.write(encodeRequest('U', bytes))
  for (let sent = 0; sent < bytes; ) {
    const n = Math.min(CHUNK, bytes - sent)
    sent += n
    if (!s.write(n === CHUNK ? PAYLOAD : PAYLOAD.subarray(0, n))) await new Promise((r) => s.once('drain', r))
  }
  await answer
  const ms = performance.now() - t0
  s.destroy()
  return ms
}

if (process.argv[1] === SELF) {
  helpIfAsked(import.meta.url)
  const { values } = parseArgs({
    options: {
      mib: { type: 'string', default: '256' },
      reps: { type: 'string', default: '3' },
      connections: { type: 'string', default: '300' },
      out: { type: 'string' },
      inside: { type: 'boolean', default: false },
    },
  })
  const opts = { mib: Number(values.mib), reps: Number(values.reps), connections: Number(values.connections) }
  if (values.inside) await inside({ ...opts, out: values.out! })
  else {
    const skip = transparentBenchSkip()
    if (skip !== undefined) {
      process.stderr.write(`transparent benchmark skipped: ${skip}\n`)
      process.exit(1)
    }
    await runTransparentBench({ ...opts, ...(values.out === undefined ? {} : { out: values.out }) })
  }
}
