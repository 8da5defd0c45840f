/**
 * Two real daemons (`warren up` child processes) on loopback: `a` offers services, `b` uses them, and with
 * `fullPath` a second client `c` whose gateway runs with the fast path off (every gateway and proxy request takes
 * the full path). `b` and `c` know `a` by the alias `a` (its ticket in their peers); `a` lets them in as `b` and `c`.
 * `a` keeps the TCP port it got at the first start, so a restarted `a` is reachable at the same address.
 */
import { readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { after, before } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { HomePaths } from '../../src/config/home.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { loadNodeKey } from '../../src/identity/keys.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from './daemon.ts'

export interface DaemonPair {
  a: TestDaemon
  b: TestDaemon
  /** The full-path client; undefined without `fullPath`. */
  c: TestDaemon | undefined
  aHome: HomePaths
  bHome: HomePaths
  /** a's node id. */
  aId: string
  /** b's node id. */
  bId: string
  aTicket: string
  /** b's access port (fast path), host:port. */
  fast: string
  /** c's access port (full path only), host:port; '' without `fullPath`. */
  full: string
  /** Kills `a` (SIGKILL) and starts it again on the same home (same key, same port). */
  restartA(): Promise<TestDaemon>
  /** Restarts `b` (SIGTERM, then `warren up` again). */
  restartB(): Promise<TestDaemon>
  close(): Promise<void>
}

async function accessOf(d: TestDaemon): Promise<string> {
  const c = await d.client()
  try {
    return (await c.status()).access!.listen
  } finally {
    c.close()
  }
}

const idOf = async (home: HomePaths): Promise<string> => peerIdFromPrivateKey(await loadNodeKey(home.key)).toString()

/** Starts `a` with `services`, then `b` (and `c` when `fullPath`), both with `a` as a peer. */
export async function startDaemonPair(services: ConfigInput['services'], fullPath = false): Promise<DaemonPair> {
  const bHome = await makeHome()
  const cHome = fullPath ? await makeHome() : undefined
  const bId = await idOf(bHome)
  const peers: Record<string, string> = { b: bId }
  if (cHome !== undefined) peers.c = await idOf(cHome)
  const aHome = await makeHome(testConfig({ services, peers }))
  const a = await TestDaemon.start(aHome)
  const ident = await a.identity()
  const aConfig = JSON.parse(await readFile(aHome.config, 'utf8')) as ConfigInput
  const tcp = ident.addrs.find((x) => x.startsWith('/ip4/127.0.0.1/tcp/'))!
  aConfig.listen = [tcp.replace(/\/p2p\/.*$/, '')]
  await writeConfig(aHome, aConfig)
  const clientConfig = testConfig({ peers: { a: ident.ticket } })
  await writeConfig(bHome, clientConfig)
  const bStart = TestDaemon.start(bHome)
  let cStart: Promise<TestDaemon> | undefined
  if (cHome !== undefined) {
    await writeConfig(cHome, clientConfig)
    const before = process.env.WARREN_GATEWAY_FAST_PATH
    process.env.WARREN_GATEWAY_FAST_PATH = '0' // read by the child's environment at spawn time
    cStart = TestDaemon.start(cHome)
    if (before === undefined) delete process.env.WARREN_GATEWAY_FAST_PATH
    else process.env.WARREN_GATEWAY_FAST_PATH = before
  }
  const [b, c] = await Promise.all([bStart, cStart])
  const pair: DaemonPair = {
    a,
    b,
    c,
    aHome,
    bHome,
    aId: ident.id,
    bId,
    aTicket: ident.ticket,
    fast: await accessOf(b),
    full: c === undefined ? '' : await accessOf(c),
    async restartA() {
      await pair.a.stop('SIGKILL')
      pair.a = await TestDaemon.start(aHome)
      return pair.a
    },
    async restartB() {
      await pair.b.stop('SIGTERM')
      pair.b = await TestDaemon.start(bHome)
      return pair.b
    },
    async close() {
      await Promise.all([pair.a.stop(), pair.b.stop(), pair.c?.stop()])
      await Promise.all([removeHome(aHome), removeHome(bHome), cHome === undefined ? undefined : removeHome(cHome)])
    },
  }
  return pair
}

/**
 * A forward on `b` to each of `a`'s `services` (loopback, a free port): service name → the forward's host:port.
 * `check: false` adds them without the service check, whose stream makes a connection to each service.
 */
export async function forwardEach(
  pair: DaemonPair,
  services: string[],
  opts: { check?: boolean } = {},
): Promise<Map<string, string>> {
  const fwd = new Map<string, string>()
  const client = await pair.b.client()
  try {
    for (const name of services) {
      const f = await client.forwardAdd({ node: 'a', service: name, listen: '127.0.0.1:0', check: opts.check ?? true })
      fwd.set(name, f.listen)
    }
  } finally {
    client.close()
  }
  return fwd
}

/** A client connection to a forward's `host:port`, half-open allowed (it may end its side and still read). */
export function dialForward(listen: string): Socket {
  const i = listen.lastIndexOf(':')
  return connect({ host: listen.slice(0, i), port: Number(listen.slice(i + 1)), allowHalfOpen: true })
}

/**
 * For a describe block: the server `start` makes, offered by daemon `a` as `web` (a TCP service) and `hweb` (a
 * `"type": "http"` one), reached from `b` (the gateway's fast path) and `c` (the full path); started before the
 * block's tests and stopped after them.
 */
export function useTargetPair<T extends { port: number; close(): Promise<void> }>(
  start: () => Promise<T>,
): { pair(): DaemonPair; target(): T } {
  let pair: DaemonPair | undefined
  let target: T | undefined
  before(async () => {
    target = await start()
    pair = await startDaemonPair(
      { web: `/tcp/${target.port}`, hweb: { target: `/tcp/${target.port}`, type: 'http' } },
      true,
    )
  })
  after(async () => {
    await pair?.close()
    await target?.close()
  })
  return { pair: () => pair!, target: () => target! }
}
