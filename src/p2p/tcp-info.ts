/**
 * What the kernel knows about a TCP connection's sent data (Linux `getsockopt(TCP_INFO)` on the socket's file
 * descriptor, called through koffi): how many segments are unacknowledged, how many retransmission time-outs in a row
 * fired without an acknowledgement, and how long ago the last acknowledgement came. A path whose NAT mapping vanished
 * shows it within a few retransmission time-outs (the first after at least 200 ms), long before any application-level
 * time-out, and without sending anything extra.
 *
 * Elsewhere (no Linux, no libc, a socket without a descriptor) {@link tcpInfo} returns undefined and callers fall back
 * to their own pings.
 *
 * @example
 * ```ts
 * const info = tcpInfo(socket)
 * if (info !== undefined && info.unacked > 0 && info.retransmits >= 2) …the far end has not acknowledged anything
 * ```
 */
import type { Socket } from 'node:net'
import { endianness } from 'node:os'

const SOL_TCP = 6
const TCP_INFO = 11
/** Bytes asked for: struct tcp_info up to tcpi_rttvar (Linux 2.6+), offsets below. */
const SIZE = 104
const LITTLE = endianness() === 'LE'

export interface TcpInfo {
  /** Retransmission time-outs in a row without an acknowledgement (tcpi_retransmits). */
  retransmits: number
  /** Sent segments not acknowledged yet (tcpi_unacked). */
  unacked: number
  /** Ms since the last acknowledgement arrived (tcpi_last_ack_recv). */
  lastAckMs: number
  /** Ms since the last data was sent (tcpi_last_data_sent). */
  lastSentMs: number
  /** Smoothed round trip, ms (tcpi_rtt). */
  rttMs: number
  /** The retransmission time-out now, ms (tcpi_rto). */
  rtoMs: number
}

type GetSockOpt = (fd: number, level: number, name: number, value: Buffer, len: number[]) => number
let getsockopt: GetSockOpt | null | undefined

async function load(): Promise<void> {
  if (getsockopt !== undefined) return
  getsockopt = null
  if (process.platform !== 'linux') return
  try {
    const { default: koffi } = await import('koffi')
    getsockopt = koffi
      .load('libc.so.6')
      .func(
        'int getsockopt(int fd, int level, int optname, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)',
      ) as GetSockOpt
  } catch {
    getsockopt = null
  }
}
// loaded once at start; until it is, tcpInfo answers undefined
void load()

/** The file descriptor under a Node TCP socket, if it has one. */
function fdOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : undefined
}

/** The kernel's view of `socket`'s sent data, or undefined where it cannot be read. */
export function tcpInfo(socket: Socket): TcpInfo | undefined {
  if (getsockopt == null) return undefined
  const fd = fdOf(socket)
  if (fd === undefined) return undefined
  const buf = Buffer.alloc(SIZE)
  const len = [SIZE]
  if (getsockopt(fd, SOL_TCP, TCP_INFO, buf, len) !== 0 || (len[0] ?? 0) < 76) return undefined
  const u32 = (at: number): number => (LITTLE ? buf.readUInt32LE(at) : buf.readUInt32BE(at))
  return {
    retransmits: buf.readUInt8(2),
    rtoMs: u32(8) / 1000,
    unacked: u32(24),
    lastSentMs: u32(44),
    lastAckMs: u32(56),
    rttMs: u32(68) / 1000,
  }
}
