/**
 * The workloads of bench/peers.ts, each run against one tunnel's client-side ports and returning plain numbers:
 * bulk transfer both ways, connection set-up through the established tunnel, HTTP keep-alive load, and memory
 * (PSS of the idle forwarder ends, and its growth per idle forwarded connection).
 */
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { loadavg } from 'node:os'
import { runAutocannon, runWrk } from '../http.ts'
import { MiB, mibPerSec, quantile } from '../stats.ts'
import { tcpDownload, tcpSetup, tcpUpload } from '../xfer.ts'
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

/** p50 and p99 ms of `count` sequential connect + 1-byte echo round trips. */
export async function setup(t: Tunnel, count: number): Promise<{ p50: Sample; p99: Sample }> {
  await tcpSetup('127.0.0.1', t.ports.echo, 20, 60_000) // warm-up: first streams, JIT
  const sockets = tcpSockets()
  const samples = await tcpSetup('127.0.0.1', t.ports.echo, count, 120_000)
  const load = load1()
  const r = (x: number): number => Math.round(x * 1000) / 1000
  return {
    p50: { value: r(quantile(samples, 0.5)), load, tcpSockets: sockets },
    p99: { value: r(quantile(samples, 0.99)), load, tcpSockets: sockets },
  }
}

export interface HttpLoadOptions {
  seconds: number
  connections: number
  loadgen: 'wrk' | 'autocannon'
  /** Scratch dir for wrk scripts. */
  dir: string
}

/** Requests/s of keep-alive GETs with `connections` connections, after a 1 s warm-up. */
export async function http(t: Tunnel, o: HttpLoadOptions): Promise<Sample & { errors: number }> {
  const target = { name: t.name.replace(/\W+/g, '-'), url: `http://127.0.0.1:${t.ports.http}/` }
  const run = (s: number) =>
    o.loadgen === 'wrk' ? runWrk(target, s, o.connections, o.dir) : runAutocannon(target, s, o.connections)
  await run(1)
  const r = await run(o.seconds)
  return { value: r.rps, load: load1(), errors: r.errors + r.non2xx }
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

/** Opens one connection to the echo port and waits for one echoed byte: the tunnel's stream is up end to end. */
function openEchoed(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error('idle connection: no echo within 30 s'))
    }, 30_000)
    s.once('connect', () => s.write('x'))
    s.once('data', () => {
      clearTimeout(timer)
      resolve(s)
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
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

/** Opens `n` idle echo connections (64 at a time) and returns the PSS growth of both ends per connection, KiB. */
export async function perConnection(t: Tunnel, n: number): Promise<Sample> {
  const before = await settledPss(t.pids)
  const sockets: Socket[] = []
  try {
    for (let i = 0; i < n; i += 64) {
      const batch = await Promise.allSettled(
        Array.from({ length: Math.min(64, n - i) }, () => openEchoed(t.ports.echo)),
      )
      for (const r of batch) if (r.status === 'fulfilled') sockets.push(r.value)
      const failed = batch.find((r) => r.status === 'rejected')
      if (failed !== undefined) throw new Error(`${t.name}: idle connection ${sockets.length + 1}: ${failed.reason}`)
    }
    const after = await settledPss(t.pids)
    return { value: Math.round(((after - before) / n) * 10) / 10, load: load1() }
  } finally {
    for (const s of sockets) s.destroy()
  }
}
