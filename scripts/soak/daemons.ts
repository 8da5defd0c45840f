/**
 * Two real `warren up` daemons on loopback, as test/support/daemon-pair.ts starts them, except that `a` (the serving
 * side) listens on fixed ports so that `b` can reach it again by the same ticket after `a` restarts. Also: the peak
 * resident memory of every daemon process (VmHWM, sampled VmRSS) over the run.
 */
import { createSocket } from 'node:dgram'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { HomePaths } from '../../src/config/home.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { loadNodeKey } from '../../src/identity/keys.ts'
import { runCli } from '../../test/support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from '../../test/support/daemon.ts'

/** A free loopback TCP or UDP port (bound, read, released). */
async function freePort(kind: 'tcp' | 'udp'): Promise<number> {
  if (kind === 'udp') {
    const s = createSocket('udp4')
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r))
    const { port } = s.address()
    await new Promise<void>((r) => s.close(() => r()))
    return port
  }
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as { port: number }
  await new Promise((r) => s.close(r))
  return port
}

/** Memory of one daemon process (KiB), from /proc/<pid>/status. */
export interface RssRecord {
  role: 'a' | 'b'
  pid: number
  peakKiB: number
}

async function procStatus(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8')
    const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0)
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') }
  } catch {
    return undefined
  }
}

export interface SoakPair {
  a: TestDaemon
  b: TestDaemon
  aHome: HomePaths
  bHome: HomePaths
  /** b's access port (SOCKS5, gateway), host:port. */
  access: string
  /** The local port of `warren forward a/soak` on b. */
  forwardPort: number
  /** Stops `a` with `signal` and starts it again on the same home and ports. */
  restartA(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>
  /** Peak RSS per daemon process so far (every instance of `a`). */
  rss(): RssRecord[]
  close(): Promise<void>
}

/** Starts `a` serving `soak` and `web` on the given local ports, then `b`, then a forward on b to a/soak. */
export async function startSoakPair(tcpPort: number, httpPort: number): Promise<SoakPair> {
  const bHome = await makeHome()
  const homes = [bHome]
  const daemons: TestDaemon[] = []
  const peaks = new Map<number, RssRecord>()
  const sample = async (): Promise<void> => {
    for (const d of daemons) {
      const pid = d.child.pid
      if (pid === undefined || d.child.exitCode !== null || d.child.signalCode !== null) continue
      const st = await procStatus(pid)
      if (st === undefined) continue
      const rec = peaks.get(pid) ?? { role: d.home === bHome ? 'b' : 'a', pid, peakKiB: 0 }
      rec.peakKiB = Math.max(rec.peakKiB, st.rss, st.hwm)
      peaks.set(pid, rec)
    }
  }
  const sampler = setInterval(() => void sample(), 1000)
  const start = async (home: HomePaths): Promise<TestDaemon> => {
    const d = await TestDaemon.start(home, [], 30_000)
    daemons.push(d)
    return d
  }
  try {
    const bPeer = peerIdFromPrivateKey(await loadNodeKey(bHome.key)).toString()
    const [tcp, udp] = [await freePort('tcp'), await freePort('udp')]
    const services: ConfigInput['services'] = { soak: `/tcp/${tcpPort}`, web: `/tcp/${httpPort}` }
    const aHome = await makeHome(
      testConfig({
        listen: [`/ip4/127.0.0.1/tcp/${tcp}`],
        traversal: { udpListen: [`/ip4/127.0.0.1/udp/${udp}`] },
        services,
        peers: { b: bPeer },
      }),
    )
    homes.push(aHome)
    let a = await start(aHome)
    await writeConfig(bHome, testConfig({ peers: { a: (await a.identity()).ticket } }))
    const b = await start(bHome)
    const c = await b.client()
    let access: string
    try {
      access = (await c.status()).access!.listen
    } finally {
      c.close()
    }
    const fwd = await runCli(['forward', 'a/soak', '--json'], { home: bHome.dir })
    if (fwd.code !== 0) throw new Error(`warren forward failed: ${fwd.stderr}`)
    const { listen } = JSON.parse(fwd.stdout) as { listen: string }
    const pair: SoakPair = {
      get a() {
        return a
      },
      b,
      aHome,
      bHome,
      access,
      forwardPort: Number(listen.slice(listen.lastIndexOf(':') + 1)),
      async restartA(signal) {
        await sample()
        await a.stop(signal)
        a = await start(aHome)
      },
      rss: () => [...peaks.values()],
      async close() {
        clearInterval(sampler)
        await sample()
        await Promise.all(daemons.map((d) => d.stop()))
        await Promise.all(homes.map(removeHome))
      },
    }
    return pair
  } catch (err) {
    clearInterval(sampler)
    await Promise.all(daemons.map((d) => d.stop()))
    await Promise.all(homes.map(removeHome))
    throw err
  }
}
