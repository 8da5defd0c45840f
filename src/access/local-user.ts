/**
 * Which local user is on the other end of an accepted TCP connection (Linux), so that the local entry points (the
 * access port, forwards, DNS over TCP) serve only the daemon's own user by default.
 *
 * The kernel is asked over netlink for the owner of the client's socket by its exact 4-tuple (sock-diag.ts): one
 * hash lookup, microseconds whatever the number of sockets. Where netlink cannot answer, the client's socket is the
 * line of `/proc/net/tcp` (or `tcp6`) whose local address is our socket's remote address, and its `uid` column is the
 * user that opened it. The kernel writes these files by walking its whole socket hash table (milliseconds with much
 * memory or many TIME_WAIT sockets), so a lookup reads only up to its line, and lookups that arrive together share
 * one pass, so a burst of connections costs one pass, not one each. A connection from another machine has no socket
 * here; a loopback connection without one (the client is already gone) counts as a stranger.
 *
 * @example
 * ```ts
 * const gate = new LocalUserGate({ allowOtherUsers: false, log, what: 'access port' })
 * server.on('connection', (s) => gate.admit(s).then((ok) => { if (ok) serve(s) }))
 * ```
 */

import { close, open, read } from 'node:fs'
import { isIPv4, isIPv6, type Socket } from 'node:net'
import { endianness } from 'node:os'
import type { Logger } from '../log.ts'
import { SockDiagUnavailable, sockOwner } from './sock-diag.ts'

/** Is this Linux, with the `/proc/net` tables the check reads? */
export const CAN_CHECK_LOCAL_USERS = process.platform === 'linux' && typeof process.getuid === 'function'

/** A socket state of `/proc/net/tcp`: TIME_WAIT lines carry no owner (uid 0). */
const TIME_WAIT = '06'
const LISTEN = '0A'

function hex32(n: number, little: boolean): string {
  const b = Buffer.alloc(4)
  if (little) b.writeUInt32LE(n >>> 0)
  else b.writeUInt32BE(n >>> 0)
  return b.toString('hex').toUpperCase()
}

/** The `/proc/net/tcp` spelling of an IPv4 address (one 32-bit word in host byte order). */
function v4Hex(ip: string, little: boolean): string {
  const [a, b, c, d] = ip.split('.').map(Number) as [number, number, number, number]
  return hex32(((a << 24) | (b << 16) | (c << 8) | d) >>> 0, little)
}

/** The 16 bytes of an IPv6 address. */
function v6Bytes(ip: string): Buffer {
  const [head, tail] = ip.split('::') as [string, string | undefined]
  const parse = (s: string): number[] => {
    if (s === '') return []
    const out: number[] = []
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number]
        out.push((a << 8) | b, (c << 8) | d)
      } else out.push(Number.parseInt(g, 16))
    }
    return out
  }
  const h = parse(head)
  const t = tail === undefined ? [] : parse(tail)
  const groups = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t]
  const buf = Buffer.alloc(16)
  for (const [i, g] of groups.entries()) buf.writeUInt16BE(g & 0xffff, i * 2)
  return buf
}

/** The `/proc/net/tcp6` spelling: four 32-bit words, each in host byte order. */
function v6Hex(ip: string, little: boolean): string {
  const b = v6Bytes(ip)
  let out = ''
  for (let i = 0; i < 16; i += 4) out += hex32(b.readUInt32BE(i), little)
  return out
}

function portHex(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0')
}

/** The `local_address` keys the client's socket may have, per file. */
export function procKeys(
  address: string,
  port: number,
  little = endianness() === 'LE',
): { tcp: string[]; tcp6: string[] } {
  const p = portHex(port)
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1]
  const v4 = isIPv4(address) ? address : mapped
  if (v4 !== undefined) {
    return { tcp: [`${v4Hex(v4, little)}:${p}`], tcp6: [`${v6Hex(`::ffff:${v4}`, little)}:${p}`] }
  }
  if (isIPv6(address)) return { tcp: [], tcp6: [`${v6Hex(address, little)}:${p}`] }
  return { tcp: [], tcp6: [] }
}

/** Is `address` a loopback address (127/8, ::1, ::ffff:127/8)? */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^::ffff:/, '')
  return a === '::1' || (isIPv4(a) && a.startsWith('127.'))
}

/** The owner uid of the socket whose `local remote` address pair is one of `keys`, from a `/proc/net/tcp*` text. */
export function ownerIn(table: string, keys: readonly string[]): number | undefined {
  if (keys.length === 0) return undefined
  for (const key of keys) {
    let at = table.indexOf(` ${key} `)
    while (at >= 0) {
      const start = table.lastIndexOf('\n', at) + 1
      const end = table.indexOf('\n', at)
      // sl local rem st tx:rx tr:when retrnsmt uid: the key must be the local address, not the remote one
      const fields = table
        .slice(start, end < 0 ? undefined : end)
        .trim()
        .split(/\s+/)
      const st = fields[3]
      if (`${fields[1]} ${fields[2]}` === key && st !== TIME_WAIT && st !== LISTEN && fields[7] !== undefined)
        return Number(fields[7])
      at = table.indexOf(` ${key} `, at + 1)
    }
  }
  return undefined
}

/** A lookup waiting for its line in a pass over a table. */
interface Lookup {
  keys: readonly string[]
  done: (uid: number | undefined) => void
}

/** Bytes asked for per read: the kernel hands out at most one page of lines per call anyway. */
const READ_SIZE = 16 * 1024

/**
 * One pass over a `/proc/net` table, read page by page: each page is searched for the lines of the lookups joined
 * to the pass, and the pass stops as soon as every one of them has its line. The kernel walks its whole socket hash
 * table to write the file (milliseconds on a machine with much memory or many sockets), so stopping at the line
 * saves most of that walk.
 */
class TablePass {
  readonly started = performance.now()
  readonly #lookups = new Set<Lookup>()
  readonly #buf = Buffer.allocUnsafe(READ_SIZE)
  readonly #onEnd: () => void
  /** The complete lines read so far, for lookups that join later. */
  #seen = ''
  /** A line cut by the end of the latest read. */
  #partial = ''
  #fd: number | undefined
  #ended = false

  constructor(file: string, onEnd: () => void) {
    this.#onEnd = onEnd
    open(file, 'r', (err, fd) => {
      if (err !== null) return this.#end()
      this.#fd = fd
      if (this.#lookups.size === 0) return this.#end()
      this.#readNext()
    })
  }

  /** Adds a lookup: answered from the lines read so far, else from those still to come (undefined at the end). */
  join(lookup: Lookup): void {
    const uid = this.#seen === '' ? undefined : ownerIn(this.#seen, lookup.keys)
    if (uid !== undefined) lookup.done(uid)
    else this.#lookups.add(lookup)
  }

  #readNext(): void {
    read(this.#fd as number, this.#buf, 0, READ_SIZE, null, (err, n) => {
      if (err !== null || n === 0) return this.#end()
      const text = this.#partial + this.#buf.toString('latin1', 0, n)
      const cut = text.lastIndexOf('\n') + 1
      this.#partial = text.slice(cut)
      const lines = text.slice(0, cut)
      if (lines !== '') {
        this.#seen += lines
        for (const lookup of this.#lookups) {
          const uid = ownerIn(lines, lookup.keys)
          if (uid === undefined) continue
          this.#lookups.delete(lookup)
          lookup.done(uid)
        }
      }
      if (this.#lookups.size === 0) this.#end()
      else this.#readNext()
    })
  }

  /** Stops reading; the lookups still waiting have no line. */
  #end(): void {
    if (this.#ended) return
    this.#ended = true
    if (this.#fd !== undefined) close(this.#fd, () => {})
    this.#seen = ''
    for (const lookup of this.#lookups) lookup.done(undefined)
    this.#lookups.clear()
    this.#onEnd()
  }
}

/**
 * Lookups in one `/proc/net` table, sharing passes: a lookup joins the pass under way if it started after the
 * lookup's connection was accepted (one started earlier may miss it), else waits for the next pass, which starts
 * when the one under way ends; so a burst costs at most two passes.
 */
class TableReader {
  readonly #file: string
  #current: TablePass | undefined
  #next: Lookup[] | undefined

  constructor(file: string) {
    this.#file = file
  }

  /** The owner uid of the first line with one of `keys` (see {@link ownerIn}), in a pass started at `since` or later. */
  find(keys: readonly string[], since: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const lookup: Lookup = { keys, done: resolve }
      const cur = this.#current
      if (cur === undefined) this.#start([lookup])
      else if (cur.started >= since) cur.join(lookup)
      else if (this.#next === undefined) this.#next = [lookup]
      else this.#next.push(lookup)
    })
  }

  #start(lookups: Lookup[]): void {
    const pass = new TablePass(this.#file, () => {
      if (this.#current !== pass) return
      this.#current = undefined
      const next = this.#next
      this.#next = undefined
      if (next !== undefined) this.#start(next)
    })
    this.#current = pass
    for (const lookup of lookups) pass.join(lookup)
  }
}

const tcp = new TableReader('/proc/net/tcp')
const tcp6 = new TableReader('/proc/net/tcp6')

/** Set when the netlink lookup cannot answer in this process: every later lookup reads `/proc/net`. */
let netlinkOff = false

/** This end of accepted sockets, when the listener is bound to one address: no system call needed to learn it. */
export interface ListenEnd {
  address: string
  port: number
}

/**
 * The uid of the local process at the other end of `socket`, or undefined (another machine, or unknown): asked of
 * the kernel over netlink by the client socket's exact 4-tuple ({@link sockOwner}, microseconds whatever the number
 * of sockets), else read from `/proc/net/tcp{,6}`. `local`: this end's address, when the listener is bound to one
 * (else it is asked of the socket).
 */
export async function peerUid(socket: Socket, local?: ListenEnd): Promise<number | undefined> {
  const since = performance.now()
  const { remoteAddress, remotePort } = socket
  const localAddress = local?.address ?? socket.localAddress
  const localPort = local?.port ?? socket.localPort
  if (remoteAddress === undefined || remotePort === undefined) return undefined
  if (localAddress === undefined || localPort === undefined) return undefined
  if (!netlinkOff) {
    try {
      // the client's socket: its own address is our remote one, its peer is our local one
      return sockOwner({ local: remoteAddress, localPort: remotePort, remote: localAddress, remotePort: localPort })
        ?.uid
    } catch (err) {
      if (!(err instanceof SockDiagUnavailable)) throw err
      netlinkOff = true
    }
  }
  return procPeerUid(remoteAddress, remotePort, localAddress, localPort, since)
}

/** {@link peerUid} from the `/proc/net` tables. */
export async function procPeerUid(
  remoteAddress: string,
  remotePort: number,
  localAddress: string,
  localPort: number,
  since = performance.now(),
): Promise<number | undefined> {
  const ours = procKeys(remoteAddress, remotePort)
  const theirs = procKeys(localAddress, localPort)
  // the client's line: its local address is our remote one and its remote address is our local one
  const pairs = (a: string[], b: string[]) => a.flatMap((x) => b.map((y) => `${x} ${y}`))
  const v4 = pairs(ours.tcp, theirs.tcp)
  if (v4.length > 0) {
    const uid = await tcp.find(v4, since)
    if (uid !== undefined) return uid
  }
  const v6 = pairs(ours.tcp6, theirs.tcp6)
  return v6.length === 0 ? undefined : tcp6.find(v6, since)
}

export interface LocalUserGateOptions {
  /** `proxy.allowOtherUsers`: serve every local user. */
  allowOtherUsers: boolean
  /** What is refusing, for the log ("the access port", "forward 127.0.0.1:5432"). */
  what: string
  log?: Logger
}

const WARN_EVERY_MS = 60_000

/**
 * Admits local connections of the daemon's own user (and root, who can read the node's key anyway); refuses
 * those of any other local user. Off when `allowOtherUsers` is set or the platform cannot tell (not Linux).
 */
export class LocalUserGate {
  readonly #opts: LocalUserGateOptions
  readonly #uid: number
  readonly #warned = new Map<number, number>()

  constructor(opts: LocalUserGateOptions) {
    this.#opts = opts
    this.#uid = process.getuid?.() ?? -1
  }

  /** Does the gate check anything? */
  get active(): boolean {
    return CAN_CHECK_LOCAL_USERS && !this.#opts.allowOtherUsers
  }

  /**
   * Resolves with the client's uid (undefined: not known, another machine) when it may be served, or false after
   * destroying the socket. Never rejects. `local`: the listener's address when it is bound to one ({@link peerUid}).
   */
  async admit(socket: Socket, local?: ListenEnd): Promise<number | undefined | false> {
    if (!this.active) return undefined
    let uid: number | undefined
    try {
      uid = await peerUid(socket, local)
    } catch {
      uid = undefined
    }
    if (uid === this.#uid || uid === 0) return uid
    const loopback = isLoopbackAddress(socket.remoteAddress ?? '')
    if (uid === undefined && !loopback) return undefined // another machine: a non-loopback listen was asked for
    socket.destroy()
    // no line at all: the client is already gone (closed, TIME_WAIT): nothing to serve, nothing to report
    if (uid !== undefined) this.#warn(uid)
    return false
  }

  #warn(uid: number): void {
    const key = uid
    const now = Date.now()
    const last = this.#warned.get(key)
    if (last !== undefined && now - last < WARN_EVERY_MS) return
    if (this.#warned.size > 1024) this.#warned.clear()
    this.#warned.set(key, now)
    this.#opts.log?.(
      'warn',
      `${this.#opts.what} refused a connection from local user uid ${uid}: it serves only uid ${this.#uid} (set proxy.allowOtherUsers to serve every local user)`,
    )
  }
}
