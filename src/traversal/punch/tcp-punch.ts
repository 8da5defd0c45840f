/**
 * TCP direct paths through NATs by simultaneous open (RFC 793 §3.4, RFC 5382 REQ-2): each node learns the public
 * mapping of one local port from the relays' STUN-over-TCP responders, the two exchange those mappings over the
 * relayed connection (`/warren/punch/1.0.0`), and both connect from that port to the other's mapping at once. Each
 * NAT sees its own node's SYN go out first, so the other's SYN arrives as part of a known flow and is let in; the two
 * SYNs cross and the kernel completes the handshake. A SYN that reaches a NAT before its own node's SYN went out is
 * dropped and the kernel sends it again, or (no NAT on that side) answered with a reset, after which we connect again.
 *
 * Why TCP next to UDX: on this kind of machine libp2p over TCP costs about a third of the CPU per byte of libp2p over
 * udx-native (the kernel does segmentation, acknowledgements and retransmission), so a TCP direct path runs several
 * times faster. It needs both NATs to map TCP endpoint-independently, which port-preserving NATs do; a NAT that picks
 * a new port per destination (symmetric) gets the UDX path with birthday probing instead. See docs/traversal.md.
 *
 * Node cannot dial from a port it listens on (research/traversal.md), and does not have to: no listener takes part.
 * Binding the same local port for the STUN connections and the punch works because libuv sets SO_REUSEADDR on every
 * bound TCP socket and none of them listens.
 *
 * @packageDocumentation
 */
import { connect, isIPv6, type Socket } from 'node:net'
import type { Connection, Libp2p, Upgrader } from '@libp2p/interface'
import { ipPortToMultiaddr } from '@libp2p/utils'
import { WarrenError } from '../../errors.ts'
import type { Endpoint } from '../../p2p/udx/packet-socket.ts'
import { isSelfConnected, tcpStunBinding } from '../../stun/tcp-client.ts'
import { type NatBehaviour, natBehaviour } from './punch.ts'
import { TcpMultiaddrConnection } from './tcp-conn.ts'

/** Wait for a TCP simultaneous open this long by default: covers one SYN retransmission (Linux: after 1 s). */
export const TCP_PUNCH_TIMEOUT_MS = 1500
/** Pause before connecting again after an immediate refusal (the peer's socket was not connecting yet). */
const RETRY_MS = 50

export interface TcpNatReport {
  /** The public mapping of {@link localPort} as the first STUN server saw it. */
  mapped: Endpoint
  /** `easy` when every server saw the same mapping (or there was one server). */
  nat: NatBehaviour
  localPort: number
  /** How many servers answered (the verdict needs two). */
  answered: number
  /** Closes the STUN connections (call once the direct path is settled: they keep the port bound until then). */
  close(): void
}

/**
 * STUN over TCP to every server from one local port: the first connection lets the kernel pick the port, the others
 * reuse it. Rejects when the first server does not answer; later servers that fail are left out of the NAT verdict.
 */
export async function learnTcpNat(
  servers: readonly Endpoint[],
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<TcpNatReport> {
  if (servers.length === 0) {
    throw new WarrenError('ERR_NO_DIRECT_PATH', 'no STUN server to learn the TCP mapping from')
  }
  // the first server that answers picks the local port (a relay that is down only costs its time-out)
  let one: Awaited<ReturnType<typeof tcpStunBinding>> | undefined
  let failure: unknown
  let rest: Endpoint[] = []
  for (const [i, s] of servers.entries()) {
    try {
      one = await tcpStunBinding(s, opts)
      rest = servers.slice(i + 1)
      break
    } catch (err) {
      failure = err
      if (opts.signal?.aborted === true) break
    }
  }
  if (one === undefined) throw failure
  const port = one.localPort
  const others = await Promise.allSettled(rest.map((s) => tcpStunBinding(s, { ...opts, localPort: port })))
  const answers = [one, ...others.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))]
  const nat = answers.every((a) => natBehaviour(one.mapped, a.mapped) === 'easy') ? 'easy' : 'hard'
  return {
    mapped: one.mapped,
    nat,
    localPort: one.localPort,
    answered: answers.length,
    close: () => {
      for (const a of answers) a.socket.destroy()
    },
  }
}

export interface TcpPunch {
  /** The connected socket, or undefined when no connection came about before the deadline or cancel(). */
  readonly socket: Promise<Socket | undefined>
  /** Stops trying (no effect once a socket came: that one is the caller's to use or destroy). */
  cancel(): void
}

/** Connects from `localPort` to `remote` until a connection stands, `timeoutMs` passes or {@link TcpPunch.cancel}. */
export function tcpSimultaneousOpen(
  localPort: number,
  remote: Endpoint,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): TcpPunch {
  const timeoutMs = opts.timeoutMs ?? TCP_PUNCH_TIMEOUT_MS
  let done = false
  let current: Socket | undefined
  let retry: NodeJS.Timeout | undefined
  let resolveSocket!: (s: Socket | undefined) => void
  const socket = new Promise<Socket | undefined>((resolve) => {
    resolveSocket = resolve
  })
  const finish = (s: Socket | undefined): void => {
    if (done) {
      s?.destroy()
      return
    }
    done = true
    clearTimeout(deadline)
    clearTimeout(retry)
    opts.signal?.removeEventListener('abort', cancel)
    if (s === undefined) current?.destroy()
    resolveSocket(s)
  }
  const cancel = (): void => finish(undefined)
  const attempt = (): void => {
    if (done) return
    const s = connect({
      host: remote.host,
      port: remote.port,
      localAddress: isIPv6(remote.host) ? '::' : '0.0.0.0',
      localPort,
    })
    current = s
    const onError = (): void => {
      s.destroy()
      // refused (the far side had no SYN out yet) or the port is briefly unavailable: try again until the deadline
      if (!done) retry = setTimeout(attempt, RETRY_MS)
    }
    s.once('error', onError)
    s.once('connect', () => {
      s.off('error', onError)
      s.on('error', () => undefined) // until the connection wrapper takes over
      if (isSelfConnected(s)) {
        s.destroy() // its own port: no peer there
        if (!done) retry = setTimeout(attempt, RETRY_MS)
        return
      }
      finish(s)
    })
  }
  const deadline = setTimeout(cancel, timeoutMs)
  if (opts.signal?.aborted === true) cancel()
  else {
    opts.signal?.addEventListener('abort', cancel)
    attempt()
  }
  return {
    socket,
    // once a socket came, it is the caller's to use or destroy
    cancel: () => {
      if (!done) cancel()
    },
  }
}

/** The socket of each connection made here (watched by upgrade/tcp-path-watch.ts). */
const sockets = new WeakMap<Connection, Socket>()

/** The socket under `conn` when it is a punched TCP connection, else undefined. */
export function punchedSocket(conn: Connection): Socket | undefined {
  return sockets.get(conn)
}

/** `/ip4|ip6/<host>/tcp/<port>`. */
export function tcpMultiaddr(at: Endpoint): ReturnType<typeof ipPortToMultiaddr> {
  return ipPortToMultiaddr(at.host, at.port)
}

/**
 * Runs libp2p's upgrader (Noise, Yamux) on a punched socket: as the Noise initiator when `dialer`, else as responder.
 * The connection is registered with the node like any other ('connection:open'); an inbound upgrade returns nothing,
 * so the responder picks its connection out of that event by its maConn's address.
 */
export async function upgradeTcpSocket(
  node: Libp2p,
  upgrader: Upgrader,
  socket: Socket,
  opts: { dialer: boolean; remote: Endpoint; signal: AbortSignal },
): Promise<Connection> {
  const remoteAddr = tcpMultiaddr(opts.remote)
  const maConn = new TcpMultiaddrConnection({
    socket,
    remoteAddr,
    direction: opts.dialer ? 'outbound' : 'inbound',
    log: node.logger.forComponent('warren:tcp-punch').newScope('connection'),
  })
  if (opts.dialer) {
    try {
      const conn = await upgrader.upgradeOutbound(maConn, { signal: opts.signal })
      sockets.set(conn, socket)
      return conn
    } catch (err) {
      maConn.abort(err as Error)
      throw err
    }
  }
  // libp2p appends /p2p/<peer id> to the connection's remote address
  const key = remoteAddr.toString()
  const ours = (addr: string): boolean => addr === key || addr.startsWith(`${key}/p2p/`)
  let onOpen: ((evt: CustomEvent<Connection>) => void) | undefined
  let onAbort: (() => void) | undefined
  const opened = new Promise<Connection>((resolve, reject) => {
    onOpen = (evt) => {
      if (evt.detail.direction === 'inbound' && ours(evt.detail.remoteAddr.toString())) resolve(evt.detail)
    }
    onAbort = () => reject(opts.signal.reason ?? new Error('aborted'))
    node.addEventListener('connection:open', onOpen)
    opts.signal.addEventListener('abort', onAbort, { once: true })
  })
  opened.catch(() => undefined)
  try {
    await upgrader.upgradeInbound(maConn, { signal: opts.signal })
    const conn = await opened
    sockets.set(conn, socket)
    return conn
  } catch (err) {
    maConn.abort(err as Error)
    throw err
  } finally {
    node.removeEventListener('connection:open', onOpen)
    if (onAbort !== undefined) opts.signal.removeEventListener('abort', onAbort)
  }
}
