/**
 * SOCKS5 (RFC 1928) on the access port: CONNECT with domain-name, IPv4 and IPv6 address types; no
 * authentication on loopback, username/password (RFC 1929) when credentials are configured. A domain name must
 * be `<service>.<node>.warren` (any port); an address must be a Warren service address handed out by the DNS
 * server. Everything else is refused with the matching reply code, and the Warren error is logged.
 */

import { timingSafeEqual } from 'node:crypto'
import type { Socket } from 'node:net'
import { toWarrenError, WarrenError } from '../errors.ts'
import { SocksReply, socksReplyFor } from '../http/error-replies.ts'

const VERSION = 5
const AUTH_NONE = 0x00
const AUTH_USERPASS = 0x02
const AUTH_UNACCEPTABLE = 0xff
const CMD_CONNECT = 0x01
const ATYP_IPV4 = 0x01
const ATYP_DOMAIN = 0x03
const ATYP_IPV6 = 0x04

export interface SocksTarget {
  kind: 'domain' | 'ipv4' | 'ipv6'
  host: string
  port: number
}

export interface SocksOptions {
  auth?: { username: string; password: string }
  handshakeTimeoutMs: number
  /**
   * Connects the client to what it asked for: resolves with a function that takes the socket over once the
   * success reply is written, or throws a WarrenError.
   */
  connect(target: SocksTarget): Promise<(socket: Socket) => void>
  log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void
}

const ENDED = 'the SOCKS5 client closed the connection during the handshake'

/** Reads exactly n bytes from a paused socket, with a deadline. */
class Reader {
  readonly #socket: Socket
  readonly #deadline: number

  constructor(socket: Socket, timeoutMs: number) {
    this.#socket = socket
    this.#deadline = Date.now() + timeoutMs
  }

  async read(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0) // a greeting with no methods: `read(0)` on the socket never returns bytes
    let out = await this.#next(n)
    while (out.length < n) out = Buffer.concat([out, await this.#next(n - out.length)])
    return out
  }

  /**
   * Up to `n` bytes from the socket: exactly `n` once that many are there, fewer only when the client has ended.
   * Nothing past the handshake is taken out of the socket, so bytes the client sent with it (and its end, when they
   * came in one segment) are still there for the tunnel: handing them back with `unshift` fails once the socket
   * has emitted 'end'.
   */
  #next(n: number): Promise<Buffer> {
    const s = this.#socket
    const first = s.read(n) as Buffer | null
    if (first !== null) return Promise.resolve(first)
    if (s.readableEnded) return Promise.reject(new Error(ENDED))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => done(new Error('the SOCKS5 client did not finish its handshake in time')),
        Math.max(0, this.#deadline - Date.now()),
      )
      const done = (err?: Error): void => {
        clearTimeout(timer)
        s.off('readable', onReadable)
        s.off('end', onEnd)
        s.off('close', onEnd)
        s.off('error', done)
        if (err !== undefined) reject(err)
      }
      const onReadable = (): void => {
        const c = s.read(n) as Buffer | null
        if (c !== null) {
          done()
          resolve(c)
        }
      }
      const onEnd = (): void => done(new Error(ENDED))
      s.on('readable', onReadable)
      s.once('end', onEnd)
      s.once('close', onEnd)
      s.once('error', done)
    })
  }
}

function reply(socket: Socket, code: number): void {
  // BND.ADDR 0.0.0.0:0: Warren has no meaningful bound address to report
  socket.write(Buffer.from([VERSION, code, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0]))
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

async function authenticate(r: Reader, socket: Socket, opts: SocksOptions): Promise<boolean> {
  const [, nMethods] = await r.read(2)
  const methods = await r.read(nMethods!)
  const want = opts.auth === undefined ? AUTH_NONE : AUTH_USERPASS
  if (!methods.includes(want)) {
    socket.end(Buffer.from([VERSION, AUTH_UNACCEPTABLE]))
    opts.log(
      'info',
      opts.auth === undefined
        ? 'SOCKS5 client offered no "no authentication" method'
        : 'SOCKS5 client offered no username/password method, which this access port requires (proxy.auth)',
    )
    return false
  }
  socket.write(Buffer.from([VERSION, want]))
  if (opts.auth === undefined) return true
  const [, uLen] = await r.read(2)
  const user = (await r.read(uLen!)).toString()
  const [pLen] = await r.read(1)
  const pass = (await r.read(pLen!)).toString()
  const ok = safeEqual(user, opts.auth.username) && safeEqual(pass, opts.auth.password)
  socket.write(Buffer.from([1, ok ? 0 : 1]))
  if (!ok) {
    opts.log('info', `SOCKS5: wrong username or password for user "${user}" (proxy.auth)`)
    socket.end()
  }
  return ok
}

async function readTarget(r: Reader): Promise<{ cmd: number; target?: SocksTarget; bad?: number }> {
  const [ver, cmd, , atyp] = await r.read(4)
  if (ver !== VERSION) return { cmd: cmd!, bad: SocksReply.GENERAL_FAILURE }
  let host: string
  let kind: SocksTarget['kind']
  if (atyp === ATYP_IPV4) {
    host = [...(await r.read(4))].join('.')
    kind = 'ipv4'
  } else if (atyp === ATYP_DOMAIN) {
    const [len] = await r.read(1)
    host = (await r.read(len!)).toString('latin1')
    kind = 'domain'
  } else if (atyp === ATYP_IPV6) {
    const b = await r.read(16)
    const groups: string[] = []
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16))
    host = groups.join(':')
    kind = 'ipv6'
  } else return { cmd: cmd!, bad: SocksReply.ADDRESS_TYPE_NOT_SUPPORTED }
  const port = (await r.read(2)).readUInt16BE(0)
  return { cmd: cmd!, target: { kind, host, port } }
}

/** Runs the SOCKS5 handshake on a socket whose first byte is 0x05, then hands it to `opts.connect`. */
export async function handleSocks5(socket: Socket, opts: SocksOptions): Promise<void> {
  socket.pause()
  const r = new Reader(socket, opts.handshakeTimeoutMs)
  let target: SocksTarget | undefined
  try {
    if (!(await authenticate(r, socket, opts))) return
    const req = await readTarget(r)
    if (req.bad !== undefined) {
      reply(socket, req.bad)
      socket.end()
      return
    }
    if (req.cmd !== CMD_CONNECT) {
      opts.log('info', `SOCKS5 command ${req.cmd} refused: only CONNECT (1) is supported`)
      reply(socket, SocksReply.COMMAND_NOT_SUPPORTED)
      socket.end()
      return
    }
    target = req.target!
  } catch (err) {
    opts.log('debug', `SOCKS5 handshake: ${(err as Error).message}`)
    socket.destroy()
    return
  }
  let takeOver: (socket: Socket) => void
  try {
    takeOver = await opts.connect(target)
  } catch (error) {
    const err = toWarrenError(error)
    opts.log('info', `SOCKS5 ${target.host}:${target.port} refused: ${err.code}: ${err.message}`)
    if (!socket.destroyed) {
      reply(socket, socksReplyFor(err))
      socket.end()
    }
    return
  }
  if (socket.destroyed) {
    takeOver(socket) // lets the caller release the stream it opened
    return
  }
  reply(socket, SocksReply.SUCCEEDED)
  takeOver(socket)
}

/** The error for a SOCKS5 IP address that is no Warren service address. */
export function notAServiceAddress(ip: string): WarrenError {
  return new WarrenError(
    'ERR_NOT_WARREN_NAME',
    `${ip} is not a Warren service address, and Warren is not an open proxy`,
    {
      hint: 'Connect by name (socks5h:// or curl --socks5-hostname) to <service>.<node>.warren, or resolve the name with the Warren DNS server first.',
      details: { host: ip },
    },
  )
}
