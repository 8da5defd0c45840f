/**
 * Daemons and clients for data-path tests through the access port: a serving daemon `a` whose services point at
 * a test server, a client daemon `b` (the gateway's fast path on) and optionally `c` (fast path off, so every
 * gateway and proxy request takes the full path), each in its own process; curl run with its output hashed as it
 * streams; and Node HTTP requests through each access path (SOCKS5, CONNECT, absolute form, gateway) for what
 * curl cannot do (pausing readers, cutting an upload at a chosen byte).
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { type ClientRequest, type RequestOptions, request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { ConfigInput } from '../../src/config/schema.ts'
import { loadNodeKey } from '../../src/identity/keys.ts'
import { socks5Connect } from '../access/support.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from '../helpers/daemon.ts'

export interface AccessLab {
  a: TestDaemon
  b: TestDaemon
  c: TestDaemon | undefined
  /** a's node id. */
  aId: string
  /** b's access port (fast path), host:port. */
  fast: string
  /** c's access port (full path only), host:port; '' without `fullPath`. */
  full: string
  /** Starts a fresh `a` on the same home (same key, same ports), e.g. after it was killed. */
  restartA(): Promise<TestDaemon>
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

/** Starts `a` with `services`, then `b` (and `c` with the fast path off when `fullPath`), both knowing `a` as `a`. */
export async function startAccessLab(services: ConfigInput['services'], fullPath = false): Promise<AccessLab> {
  const bHome = await makeHome()
  const cHome = fullPath ? await makeHome() : undefined
  const idOf = async (keyPath: string): Promise<string> => peerIdFromPrivateKey(await loadNodeKey(keyPath)).toString()
  const peers: Record<string, string> = { b: await idOf(bHome.key) }
  if (cHome !== undefined) peers.c = await idOf(cHome.key)
  const aHome = await makeHome(testConfig({ services, peers }))
  let a = await TestDaemon.start(aHome)
  // a restarted `a` must be reachable at the same address: pin the port it got
  const aConfig = JSON.parse(await readFile(aHome.config, 'utf8')) as ConfigInput
  const ident = await a.identity()
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
  const lab: AccessLab = {
    a,
    b,
    c,
    aId: ident.id,
    fast: await accessOf(b),
    full: c === undefined ? '' : await accessOf(c),
    async restartA() {
      await a.stop('SIGKILL')
      a = await TestDaemon.start(aHome)
      lab.a = a
      return a
    },
    async close() {
      await Promise.all([lab.a.stop(), b.stop(), c?.stop()])
      await Promise.all([removeHome(aHome), removeHome(bHome), cHome === undefined ? undefined : removeHome(cHome)])
    },
  }
  return lab
}

export interface CurlRun {
  code: number | null
  bytes: number
  sha256: string
  /** The first 4 KiB of the output (for short answers such as an upload's `<bytes> <sha256>`). */
  text: string
  stderr: string
}

/** Runs curl with `-sS`, hashing its output as it streams; `onStart` gets the child (to kill it mid-transfer). */
export function curlRun(
  args: string[],
  opts: { timeoutMs?: number; onStart?: (kill: () => void) => void } = {},
): Promise<CurlRun> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '--max-time', String(Math.ceil((opts.timeoutMs ?? 60_000) / 1000)), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const h = createHash('sha256')
    let bytes = 0
    let text = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      h.update(d)
      bytes += d.length
      if (text.length < 4096) text += d.toString('latin1').slice(0, 4096 - text.length)
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8')
    })
    opts.onStart?.(() => child.kill('SIGKILL'))
    child.on('close', (code) => resolve({ code, bytes, sha256: h.digest('hex'), text, stderr }))
  })
}

/** The access paths to a service, and how curl and Node's HTTP client reach a URL path through each. */
export type AccessPath = 'socks' | 'proxy' | 'connect' | 'gateway' | 'kubo'

/** curl arguments that fetch `path` (e.g. `/blob/1024`) of `service` on node `a` through `access` by `how`. */
export function curlTarget(how: AccessPath, access: string, service: string, path: string): string[] {
  const url = `http://${service}.a.warren${path}`
  if (how === 'socks') return ['--socks5-hostname', access, url]
  if (how === 'proxy') return ['-x', `http://${access}`, url]
  if (how === 'connect') return ['-p', '-x', `http://${access}`, url]
  if (how === 'gateway') return [`http://${access}/http/a/${service}${path}`]
  return [`http://${access}/p2p/a/x/${service}/http${path}`]
}

function hostPort(access: string): { host: string; port: number } {
  const i = access.lastIndexOf(':')
  return { host: access.slice(0, i), port: Number(access.slice(i + 1)) }
}

/** A CONNECT tunnel through the HTTP proxy, ready for bytes. */
export function connectTunnel(access: string, target: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ ...hostPort(access), allowHalfOpen: true })
    let head = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d])
      const i = head.indexOf('\r\n\r\n')
      if (i < 0) return
      socket.off('data', onData) // not paused: the HTTP client attaches its own listener (nothing comes before)
      if (!/^HTTP\/1\.1 200 /.test(head.toString('latin1'))) {
        socket.destroy()
        reject(new Error(`CONNECT refused: ${head.toString('latin1').split('\r\n')[0]}`))
        return
      }
      if (head.length > i + 4) socket.unshift(head.subarray(i + 4))
      resolve(socket)
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.once('connect', () => socket.write(`CONNECT ${target}:80 HTTP/1.1\r\nHost: ${target}:80\r\n\r\n`))
  })
}

/** A Node HTTP request for `path` of `service` on node `a` through `access` by `how` (not yet ended). */
export function nodeRequest(
  how: AccessPath,
  access: string,
  service: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string | number> } = {},
): ClientRequest {
  const host = `${service}.a.warren`
  const base = { ...hostPort(access), method: opts.method ?? 'GET', agent: false as const, headers: opts.headers }
  if (how === 'gateway') return request({ ...base, path: `/http/a/${service}${path}` })
  if (how === 'kubo') return request({ ...base, path: `/p2p/a/x/${service}/http${path}` })
  if (how === 'proxy')
    return request({ ...base, path: `http://${host}${path}`, setHost: false, headers: { ...opts.headers, host } })
  const tunnel =
    how === 'socks'
      ? socks5Connect(access, { host, port: 80 }).then((r) => {
          if (r.reply !== 0) throw new Error(`SOCKS5 reply ${r.reply}`)
          return r.socket
        })
      : connectTunnel(access, host)
  const { agent: _none, ...direct } = base // an agent would ignore createConnection
  return request({
    ...direct,
    path,
    setHost: false,
    headers: { ...opts.headers, host },
    createConnection: (_o: unknown, cb: (err: Error | null, s?: Socket) => void) => {
      tunnel.then(
        (s) => cb(null, s),
        (err: Error) => cb(err),
      )
      return undefined
    },
  } as unknown as RequestOptions)
}

/** Resident set size of a process, bytes (Linux /proc). */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  return m === null ? 0 : Number(m[1]) * 1024
}
