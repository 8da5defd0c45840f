/**
 * Clients that reach services through a node's access port: curl (with its output hashed as it streams), a small
 * SOCKS5 client for the reply codes curl folds into one message, CONNECT tunnels, and Node HTTP requests through
 * each access path (SOCKS5, CONNECT, absolute form, gateway) for what curl cannot do (pausing readers, cutting an
 * upload at a chosen byte).
 */
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { type ClientRequest, type RequestOptions, request } from 'node:http'
import { connect, type Socket } from 'node:net'

export interface CurlResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs curl (never throws); `-sS` so errors land on stderr. */
export function curl(args: string[], opts: { input?: Buffer; timeoutMs?: number } = {}): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'curl',
      ['-sS', '--max-time', String(Math.ceil((opts.timeoutMs ?? 20_000) / 1000)), ...args],
      { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({
          code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1,
          stdout: stdout.toString('utf8'),
          stderr: stderr.toString('utf8'),
        })
      },
    )
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** Splits `curl -i` output into status, headers and body. */
export function parseCurlResponse(out: string): { status: number; headers: Record<string, string>; body: string } {
  const i = out.indexOf('\r\n\r\n')
  const head = out.slice(0, i).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of head.slice(1)) {
    const j = line.indexOf(':')
    headers[line.slice(0, j).toLowerCase()] = line.slice(j + 1).trim()
  }
  return { status: Number(head[0]!.split(' ')[1]), headers, body: out.slice(i + 4) }
}

/**
 * A minimal SOCKS5 client (RFC 1928/1929) that reports the server's reply code, for the codes curl folds into
 * one message. Resolves with the connected socket when the reply is 0.
 */
export function socks5Connect(
  access: string,
  target: { host: string; port: number; atyp?: 'domain' | 'ipv4' | 'ipv6' },
  auth?: { username: string; password: string },
): Promise<{ reply: number; socket: Socket; authStatus?: number }> {
  const i = access.lastIndexOf(':')
  const socket = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)), allowHalfOpen: true })
  let buf = Buffer.alloc(0)
  const need = (n: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (buf.length >= n) {
          socket.off('data', onData)
          socket.off('close', onClose)
          const out = buf.subarray(0, n)
          buf = buf.subarray(n)
          resolve(out)
        }
      }
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d])
        check()
      }
      const onClose = (): void => reject(new Error(`socks5: closed with ${buf.length}/${n} bytes`))
      socket.on('data', onData)
      socket.once('close', onClose)
      check()
    })
  return (async () => {
    await new Promise<void>((r, j) => socket.once('connect', r).once('error', j))
    socket.write(Buffer.from(auth === undefined ? [5, 1, 0] : [5, 1, 2]))
    const [, method] = await need(2)
    if (method === 0xff) return { reply: 0xff, socket }
    let authStatus: number | undefined
    if (auth !== undefined) {
      const u = Buffer.from(auth.username)
      const p = Buffer.from(auth.password)
      socket.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]))
      authStatus = (await need(2))[1]
      if (authStatus !== 0) return { reply: -1, socket, authStatus }
    }
    const atyp = target.atyp ?? 'domain'
    let addr: Buffer
    if (atyp === 'domain') addr = Buffer.concat([Buffer.from([3, target.host.length]), Buffer.from(target.host)])
    else if (atyp === 'ipv4') addr = Buffer.from([1, ...target.host.split('.').map(Number)])
    else addr = Buffer.concat([Buffer.from([4]), ipv6Bytes(target.host)])
    const port = Buffer.alloc(2)
    port.writeUInt16BE(target.port)
    socket.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, port]))
    const reply = await need(10)
    if (buf.length > 0) socket.unshift(buf)
    const out: { reply: number; socket: Socket; authStatus?: number } = { reply: reply[1]!, socket }
    if (authStatus !== undefined) out.authStatus = authStatus
    return out
  })()
}

function ipv6Bytes(ip: string): Buffer {
  const [h, t] = ip.split('::') as [string, string | undefined]
  const head = h === '' ? [] : h.split(':')
  const tail = t === undefined || t === '' ? [] : t.split(':')
  const groups = t === undefined ? head : [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail]
  const b = Buffer.alloc(16)
  for (const [i, g] of groups.entries()) b.writeUInt16BE(Number.parseInt(g, 16), i * 2)
  return b
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
  opts: { timeoutMs?: number; onStart?: (kill: () => void) => void; onBytes?: (total: number) => void } = {},
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
      opts.onBytes?.(bytes)
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

/**
 * GET `path` from the access port `access` (host:port) and hash the body as it streams; `pauseMs` holds the
 * response unread for that long first (a slow client).
 */
export function hashedGet(
  access: string,
  path: string,
  opts: { agent?: RequestOptions['agent']; pauseMs?: number } = {},
): Promise<{ bytes: number; sha: string }> {
  const port = Number(access.slice(access.lastIndexOf(':') + 1))
  return new Promise((resolve, reject) => {
    const ro: RequestOptions = { host: '127.0.0.1', port, path }
    if (opts.agent !== undefined) ro.agent = opts.agent
    request(ro, (res) => {
      const h = createHash('sha256')
      let n = 0
      if (opts.pauseMs !== undefined) {
        res.pause()
        setTimeout(() => res.resume(), opts.pauseMs)
      }
      res.on('data', (c: Buffer) => {
        h.update(c)
        n += c.length
      })
      res.on('end', () => resolve({ bytes: n, sha: h.digest('hex') }))
      res.on('error', reject)
    })
      .on('error', reject)
      .end()
  })
}
