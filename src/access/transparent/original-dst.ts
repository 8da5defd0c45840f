/**
 * The destination a redirected connection was sent to before nftables' `redirect` rewrote it:
 * `getsockopt(SO_ORIGINAL_DST)` (IPv4) or `getsockopt(IP6T_SO_ORIGINAL_DST)` (IPv6) on the accepted socket, called
 * through koffi on the socket's file descriptor. Conntrack keeps the original tuple; for a connection that was not
 * redirected it returns the listener's own address.
 */
import { createRequire } from 'node:module'
import type { Socket } from 'node:net'

/** koffi, loaded on first use: a daemon that never needs it never maps it. */
const koffi = (): typeof import('koffi') => createRequire(import.meta.url)('koffi') as typeof import('koffi')

const SOL_IP = 0
const SOL_IPV6 = 41
/** SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST share the number 80. */
const SO_ORIGINAL_DST = 80

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, len: number[]) => number
let getsockopt: GetSockOpt | undefined

function load(): GetSockOpt {
  getsockopt ??= koffi()
    .load('libc.so.6')
    .func(
      'int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)',
    ) as GetSockOpt
  return getsockopt
}

export interface OriginalDestination {
  family: 4 | 6
  address: string
  port: number
}

/** The file descriptor under a Node TCP socket (Unix), or undefined when it has none. */
function fdOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/** Reads the original destination; throws a plain Error with the errno when the kernel has none. */
export function originalDestination(socket: Socket, family: 4 | 6): OriginalDestination {
  const fd = fdOf(socket)
  if (fd === undefined) throw new Error('the socket has no file descriptor')
  const buf = Buffer.alloc(28) // sockaddr_in6; sockaddr_in is 16
  const len = [buf.length]
  if (load()(fd, family === 6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST, buf, len) !== 0) {
    throw new Error(`getsockopt(SO_ORIGINAL_DST) failed: errno ${koffi().errno()}`)
  }
  const port = buf.readUInt16BE(2)
  if (family === 4) return { family, address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port }
  const groups = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(8 + 2 * i).toString(16))
  return { family, address: groups.join(':'), port }
}
