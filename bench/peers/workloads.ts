/**
 * The workloads of bench/peers.ts, each run against one tunnel's client-side ports and returning plain numbers:
 * bulk transfer both ways, connection set-up through the established tunnel, the first connection to a peer never met,
 * HTTP keep-alive load, and memory
 * (PSS of the idle forwarder ends, and its growth per idle forwarded connection).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { DESCRIPTOR_RESERVE } from '../../src/open-files.ts'
import { runAutocannon, runWrk } from '../http.ts'
import { Child } from '../proc.ts'
import { MiB, mibPerSec, quantile } from '../stats.ts'
import { tcpDownload, tcpSetup, tcpUpload } from '../xfer.ts'
import { treeCpuSeconds } from './cpu.ts'
import type { Tunnel } from './forwarders.ts'
import { treePssKiB } from './pss.ts'

/** A figure with the 1-minute load average when it was taken. */
export interface Sample {
  value: number
  load: number
  /** Lines of /proc/net/tcp and tcp6 (TIME_WAIT included) when it was taken: set-up costs grow with it. */
  tcpSockets?: number
}

/** TCP sockets of the machine, TIME_WAIT included (the lines of /proc/net/tcp and /proc/net/tcp6). */
export function tcpSockets(): number {
  let n = 0
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      n += readFileSync(f, 'utf8').split('\n').length - 2
    } catch {
      // no IPv6, or not Linux
    }
  }
  return n
}

/** The 1-minute load average, two decimals. */
export const load1 = (): number => Math.round(loadavg()[0]! * 100) / 100

export async function bulk(t: Tunnel, dir: 'up' | 'down', mib: number): Promise<Sample> {
  const bytes = mib * MiB
  const timeout = 600_000
  const ms =
    dir === 'up'
      ? await tcpUpload('127.0.0.1', t.ports.xfer, bytes, timeout)
      : await tcpDownload('127.0.0.1', t.ports.xfer, bytes, timeout)
  return { value: mibPerSec(bytes, ms), load: load1() }
}

/**
 * p50 and p99 ms of `count` sequential connect + 1-byte echo round trips, after `warmup` unmeasured ones (first
 * streams, and V8 compiling the per-connection code of every tunnel written in JavaScript: a long-running forwarder
 * has done that long before, so more warm-up measures its steady state).
 */
export async function setup(t: Tunnel, count: number, warmup = 20): Promise<{ p50: Sample; p99: Sample }> {
  await tcpSetup('127.0.0.1', t.ports.echo, warmup, 120_000)
  const sockets = tcpSockets()
  const samples = await tcpSetup('127.0.0.1', t.ports.echo, count, 120_000)
  const load = load1()
  const r = (x: number): number => Math.round(x * 1000) / 1000
  return {
    p50: { value: r(quantile(samples, 0.5)), load, tcpSockets: sockets },
    p99: { value: r(quantile(samples, 0.99)), load, tcpSockets: sockets },
  }
}

/**
 * p50 and largest of `n` first connections to a peer never met (the tunnel's `cold`, bench/peers/cold.ts), ms; fails
 * when the tunnel has no such measure.
 */
export async function cold(t: Tunnel, n: number): Promise<{ p50: Sample; max: Sample }> {
  if (t.cold === undefined) throw new Error('no cold connect: this tunnel has no handshake with a peer')
  const samples = await t.cold(n)
  const load = load1()
  const r = (x: number): number => Math.round(x * 100) / 100
  return { p50: { value: r(quantile(samples, 0.5)), load }, max: { value: r(Math.max(...samples)), load } }
}

export interface HttpLoadOptions {
  seconds: number
  connections: number
  loadgen: 'wrk' | 'autocannon'
  /** Scratch dir for wrk scripts. */
  dir: string
}

/**
 * Requests/s of keep-alive GETs with `connections` connections, after a 1 s warm-up, to the tunnel's HTTP port or to
 * `url` (Warren's gateway), and the CPU time both forwarder ends (with their child processes) used per request.
 */
export async function http(
  t: Tunnel,
  o: HttpLoadOptions,
  url?: string,
): Promise<Sample & { errors: number; cpuUsPerRequest?: number }> {
  const target = {
    name: `${t.name.replace(/\W+/g, '-')}${url === undefined ? '' : '-gateway'}`,
    url: url ?? `http://127.0.0.1:${t.ports.http}/`,
  }
  const run = (s: number) =>
    o.loadgen === 'wrk' ? runWrk(target, s, o.connections, o.dir) : runAutocannon(target, s, o.connections)
  await run(1)
  const cpuBefore = treeCpuSeconds(t.pids)
  const r = await run(o.seconds)
  const cpu = treeCpuSeconds(t.pids) - cpuBefore
  const requests = r.rps * o.seconds
  return {
    value: r.rps,
    load: load1(),
    errors: r.errors + r.non2xx,
    ...(t.pids.length === 0 || requests === 0 ? {} : { cpuUsPerRequest: Math.round((cpu * 1e7) / requests) / 10 }),
  }
}

/** Waits until the PSS of `pids` stops moving (two reads 300 ms apart within 1%), at most 5 s; returns it. */
async function settledPss(pids: number[]): Promise<number> {
  let last = treePssKiB(pids)
  for (let i = 0; i < 16; i++) {
    await new Promise((r) => setTimeout(r, 300))
    const now = treePssKiB(pids)
    if (Math.abs(now - last) <= last * 0.01) return now
    last = now
  }
  return last
}

export interface IdlePss {
  /** PSS of both forwarder ends (with their child processes), MiB. */
  bothMiB: number
  /** PSS of each end alone, MiB (in the order of `Tunnel.pids`). */
  endsMiB: number[]
  load: number
}

const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10

/** PSS of the tunnel's ends once it stopped moving. */
export async function idlePss(t: Tunnel): Promise<IdlePss> {
  const both = await settledPss(t.pids)
  return { bothMiB: mib(both), endsMiB: t.pids.map((pid) => mib(treePssKiB([pid]))), load: load1() }
}

/** Connections one idle-clients child holds (each needs a file; one process may hold `ulimit -n`). */
export const PER_CLIENT = 8_000
/** Files a daemon or the echo server needs besides one per connection: a Warren daemon keeps DESCRIPTOR_RESERVE free. */
export const SPARE_FILES = DESCRIPTOR_RESERVE + 32

/** The hard limit on open files of this process, which the daemons and servers it starts inherit. */
export function openFilesLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))
  const hard = line?.trim().split(/\s+/)[4]
  return hard === undefined || hard === 'unlimited' ? Number.POSITIVE_INFINITY : Number(hard)
}

/** What {@link perConnection} measured: PSS growth per connection and the echo check of every connection. */
export interface PerConnection extends Sample {
  /**
   * The same growth once the connections have been idle for `settleS` seconds (undefined when 0): garbage from
   * setting them up, which a Node process collects and hands back only later, is out of it.
   */
  later?: Sample
  /** Connections open at once, every one of which echoed its 8 bytes. */
  open: number
  /** sha256 of the bytes every connection sent, and of those that came back (equal). */
  sha256: string
}

/**
 * Opens `n` idle echo connections, spread over child processes of at most {@link PER_CLIENT} each, every one
 * sending 8 random bytes and checking they came back; returns the PSS growth of both ends per connection, KiB.
 * Fails when a connection fails, an echo differs, or `n` exceeds what one process may open (each forwarder end and
 * the echo server hold `n` sockets).
 */
export async function perConnection(t: Tunnel, n: number, settleS = 0): Promise<PerConnection> {
  const limit = openFilesLimit()
  if (n + SPARE_FILES > limit) {
    throw new Error(
      `${n} idle connections need ${n + SPARE_FILES} open files in each forwarder end and the echo server, but the hard limit here is ${limit} (ulimit -Hn): raise it, or run with --idle ${limit - SPARE_FILES}`,
    )
  }
  const before = await settledPss(t.pids)
  const script = fileURLToPath(new URL('idle-clients.ts', import.meta.url))
  const clients: Child[] = []
  try {
    const sent = createHash('sha256')
    const got = createHash('sha256')
    let open = 0
    for (let left = n; left > 0; left -= PER_CLIENT) {
      const c = new Child(`idle clients ${clients.length + 1}`, [script, String(t.ports.echo)])
      clients.push(c)
      await c.next(30_000)
      const r = await c.request<IdleClientsAnswer>(`open ${Math.min(left, PER_CLIENT)}`, 30 * 60_000)
      if (r.failed > 0 || r.echoed !== r.open) {
        throw new Error(
          `${t.name}: idle connection ${open + r.open + 1} of ${n}: ${r.firstError ?? `${r.open - r.echoed} echoes differ`}`,
        )
      }
      open += r.open
      sent.update(r.sentSha256)
      got.update(r.gotSha256)
    }
    const sha256 = sent.digest('hex')
    if (got.digest('hex') !== sha256) throw new Error(`${t.name}: the echoed bytes differ from those sent`)
    const after = await settledPss(t.pids)
    const perConn = (pss: number): number => Math.round(((pss - before) / n) * 10) / 10
    const result: PerConnection = { value: perConn(after), load: load1(), open, sha256 }
    if (settleS > 0) {
      await new Promise((r) => setTimeout(r, settleS * 1000))
      result.later = { value: perConn(await settledPss(t.pids)), load: load1() }
    }
    return result
  } finally {
    await Promise.all(clients.map((c) => c.stop()))
  }
}

/** What a bench/peers/idle-clients.ts child answers to `open <n>`. */
export interface IdleClientsAnswer {
  open: number
  echoed: number
  failed: number
  firstError?: string
  sentSha256: string
  gotSha256: string
}
