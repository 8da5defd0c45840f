/**
 * The owner uid of one TCP socket of this machine, asked of the kernel by its exact 4-tuple over netlink
 * (`NETLINK_SOCK_DIAG`, an `inet_diag_req_v2` without `NLM_F_DUMP`): the kernel looks the socket up in its
 * established hash (one hash lookup, whatever the number of sockets) and answers with an `inet_diag_msg` that carries
 * the uid, or with `ENOENT`. The calls go through koffi to libc on one netlink socket per process, opened at the first
 * lookup; the kernel answers inside `send()`, so the `recv()` that follows finds the answer queued and never waits
 * (it is made with `MSG_DONTWAIT` all the same).
 *
 * {@link sockOwner} returns `undefined` when the kernel has no such socket, and throws {@link SockDiagUnavailable}
 * when the netlink path cannot answer at all (not Linux, no `inet_diag`/`tcp_diag` in the kernel, koffi missing),
 * so that the caller falls back to another way.
 *
 * @example
 * ```ts
 * // the uid of the client at the other end of an accepted loopback socket
 * const uid = sockOwner({ family: 4, local: '127.0.0.1', localPort: 40000, remote: '127.0.0.1', remotePort: 8080 })
 * ```
 */

import { createRequire } from 'node:module'
import { isIPv4, isIPv6 } from 'node:net'
import { endianness } from 'node:os'

const AF_INET = 2
const AF_INET6 = 10
const AF_NETLINK = 16
const SOCK_DGRAM = 2
const SOCK_CLOEXEC = 0o2000000
const NETLINK_SOCK_DIAG = 4
const SOCK_DIAG_BY_FAMILY = 20
const NLM_F_REQUEST = 1
const NLMSG_ERROR = 2
const IPPROTO_TCP = 6
const MSG_DONTWAIT = 0x40
const EAGAIN = 11
const EINTR = 4
const ENOENT = 2
/** TCP states of `include/net/tcp_states.h` that carry no owner (TIME_WAIT) or are not a client (LISTEN). */
const TCP_TIME_WAIT = 6
const TCP_LISTEN = 10

/** nlmsghdr (16) + inet_diag_req_v2 (56). */
const REQ_LEN = 72
/** Offset of `idiag_uid` in an answer: nlmsghdr (16) + family..retrans (4) + sockid (48) + expires, rqueue, wqueue. */
const UID_AT = 16 + 4 + 48 + 12
/** An answer holds one inet_diag_msg (72 bytes) and, with no extensions asked for, little else. */
const ANSWER_LEN = 8192

/** The netlink path cannot answer (as opposed to: the socket does not exist). */
export class SockDiagUnavailable extends Error {}

/** One TCP socket of this machine, seen from itself: its own (local) address and its peer's. */
export interface SockTuple {
  local: string
  localPort: number
  remote: string
  remotePort: number
}

export interface SockOwner {
  uid: number
  /** The TCP state number (1 = ESTABLISHED). */
  state: number
}

interface Libc {
  socket: (domain: number, type: number, protocol: number) => number
  send: (fd: number, buf: Buffer, len: number, flags: number) => number
  recv: (fd: number, buf: Buffer, len: number, flags: number) => number
  errno: () => number
}

let libc: Libc | undefined
let fd = -1
/** Why the netlink path is off for this process, once it failed to open. */
let broken: string | undefined
let seq = 0
const req = Buffer.alloc(REQ_LEN)
/** Netlink headers and the non-network fields are in host byte order. */
const LE = endianness() === 'LE'
const u32 = (buf: Buffer, v: number, at: number): void =>
  void (LE ? buf.writeUInt32LE(v, at) : buf.writeUInt32BE(v, at))
const u16 = (buf: Buffer, v: number, at: number): void =>
  void (LE ? buf.writeUInt16LE(v, at) : buf.writeUInt16BE(v, at))
const r32 = (buf: Buffer, at: number): number => (LE ? buf.readUInt32LE(at) : buf.readUInt32BE(at))
const answer = Buffer.alloc(ANSWER_LEN)

function open(): void {
  if (broken !== undefined) throw new SockDiagUnavailable(broken)
  if (fd >= 0) return
  try {
    if (process.platform !== 'linux') throw new Error(`not Linux (${process.platform})`)
    // koffi is loaded on the first lookup only: a daemon that never admits a local connection never maps it
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
    const lib = koffi.load('libc.so.6')
    libc = {
      socket: lib.func('int socket(int domain, int type, int protocol)') as Libc['socket'],
      send: lib.func('long send(int fd, const uint8_t *buf, size_t len, int flags)') as Libc['send'],
      recv: lib.func('long recv(int fd, _Out_ uint8_t *buf, size_t len, int flags)') as Libc['recv'],
      errno: () => koffi.errno(),
    }
    fd = libc.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    if (fd < 0) throw new Error(`socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed: errno ${libc.errno()}`)
  } catch (err) {
    broken = (err as Error).message
    throw new SockDiagUnavailable(broken)
  }
}

/** The 16 bytes of the addresses written last, by text: nearly every lookup is of the same loopback address. */
const written = new Map<string, Buffer>()
const MAX_WRITTEN = 64

/** Writes `ip` into the 16 bytes of an `idiag_src`/`idiag_dst` at `at`: IPv4 in the first 4, IPv6 in all 16. */
function putAddress(ip: string, at: number): void {
  const known = written.get(ip)
  if (known !== undefined) {
    known.copy(req, at)
    return
  }
  encodeAddress(ip, at)
  if (written.size >= MAX_WRITTEN) written.clear()
  written.set(ip, Buffer.from(req.subarray(at, at + 16)))
}

function encodeAddress(ip: string, at: number): void {
  req.fill(0, at, at + 16)
  if (isIPv4(ip)) {
    const parts = ip.split('.')
    for (let i = 0; i < 4; i++) req[at + i] = Number(parts[i])
    return
  }
  const [head, tail] = ip.split('::') as [string, string | undefined]
  const groups = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(':'))
  const h = groups(head)
  const t = groups(tail)
  const words: number[] = []
  for (const g of [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]) words.push(Number.parseInt(g, 16))
  for (const [i, w] of words.entries()) req.writeUInt16BE(w & 0xffff, at + 2 * i)
}

/** The IPv4 address inside an IPv4-mapped IPv6 one, or `ip` itself. */
function unmapped(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1]
  return v4 ?? ip
}

/**
 * The owner of the TCP socket whose own address is `t.local:t.localPort` and whose peer is `t.remote:t.remotePort`,
 * or undefined when this machine has no such socket (or only a TIME_WAIT or listening one). Throws
 * {@link SockDiagUnavailable} when netlink cannot be asked.
 */
export function sockOwner(t: SockTuple): SockOwner | undefined {
  const local = unmapped(t.local)
  const remote = unmapped(t.remote)
  const v4 = isIPv4(local) && isIPv4(remote)
  if (!v4 && !(isIPv6(local) && isIPv6(remote))) return undefined
  open()
  const lib = libc as Libc
  seq = (seq + 1) >>> 0
  // nlmsghdr
  u32(req, REQ_LEN, 0)
  u16(req, SOCK_DIAG_BY_FAMILY, 4)
  u16(req, NLM_F_REQUEST, 6)
  u32(req, seq, 8)
  u32(req, 0, 12)
  // inet_diag_req_v2: family, protocol, ext, pad, states
  req[16] = v4 ? AF_INET : AF_INET6
  req[17] = IPPROTO_TCP
  req[18] = 0
  req[19] = 0
  u32(req, 0xffffffff, 20)
  // inet_diag_sockid: sport, dport (network order), src, dst, if, cookie (INET_DIAG_NOCOOKIE)
  req.writeUInt16BE(t.localPort, 24)
  req.writeUInt16BE(t.remotePort, 26)
  putAddress(local, 28)
  putAddress(remote, 44)
  u32(req, 0, 60)
  u32(req, 0xffffffff, 64)
  u32(req, 0xffffffff, 68)
  let sent = lib.send(fd, req, REQ_LEN, 0)
  while (sent < 0 && lib.errno() === EINTR) sent = lib.send(fd, req, REQ_LEN, 0)
  if (sent !== REQ_LEN) throw new SockDiagUnavailable(`netlink send failed: errno ${lib.errno()}`)
  for (;;) {
    const n = lib.recv(fd, answer, ANSWER_LEN, MSG_DONTWAIT)
    if (n < 0) {
      const errno = lib.errno()
      if (errno === EINTR) continue
      throw new SockDiagUnavailable(
        errno === EAGAIN ? 'the kernel did not answer the netlink request' : `netlink recv failed: errno ${errno}`,
      )
    }
    if (n < 16) throw new SockDiagUnavailable(`short netlink answer (${n} bytes)`)
    if (r32(answer, 8) !== seq) continue // an answer to an earlier request that gave up on it
    const type = LE ? answer.readUInt16LE(4) : answer.readUInt16BE(4)
    if (type === NLMSG_ERROR) {
      const errno = -(LE ? answer.readInt32LE(16) : answer.readInt32BE(16))
      if (errno === ENOENT) return undefined
      throw new SockDiagUnavailable(`netlink sock_diag error: errno ${errno}`)
    }
    if (type !== SOCK_DIAG_BY_FAMILY || n < UID_AT + 4) {
      throw new SockDiagUnavailable(`unexpected netlink answer (type ${type}, ${n} bytes)`)
    }
    const state = answer[17] as number
    if (state === TCP_TIME_WAIT || state === TCP_LISTEN) return undefined
    return { uid: r32(answer, UID_AT), state }
  }
}
