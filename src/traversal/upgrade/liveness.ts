/**
 * Liveness of the direct connections `DirectPaths` makes: {@link PathWatch} closes a UDX connection that has been
 * silent for 3 s, {@link TcpPathWatch} one on a punched TCP socket whose ping goes unanswered. Each remembers why it
 * closed a connection, so that the status can say so once the close arrives.
 *
 * @packageDocumentation
 */
import type { Connection } from '@libp2p/interface'
import type { WarrenLibp2p } from '../../p2p/create.ts'
import { onAnyUdxStream } from '../../p2p/udx/endpoint.ts'
import { PathWatch } from '../../p2p/udx/path-watch.ts'
import { type UdxHub, udpEndpointOf } from '../../p2p/udx/transport.ts'
import { punchedSocket } from '../punch/tcp-punch.ts'
import { TcpPathWatch } from './tcp-path-watch.ts'

/** How long the reason for a stream that never became a connection is kept, ms. */
const REASON_TTL_MS = 60_000

/** A direct connection `DirectPaths` makes and re-makes: UDX (`/ip4|ip6/…/udp/…`) or a punched TCP one. */
export const isPunched = (conn: Connection): boolean =>
  udpEndpointOf(conn.remoteAddr) !== undefined || punchedSocket(conn) !== undefined

/** `host:port` of a punched connection's far end (the key of the watches' reasons), else undefined. */
function punchedKey(conn: Connection): string | undefined {
  const udp = udpEndpointOf(conn.remoteAddr)
  if (udp !== undefined) return `${udp.host}:${udp.port}`
  const socket = punchedSocket(conn)
  return socket === undefined ? undefined : `tcp ${conn.remoteAddr.toString()}`
}

export class Liveness {
  /** Why a watch closed a connection, by its {@link punchedKey}, until the close is handled (or a minute). */
  readonly #reasons = new Map<string, { why: string; at: number }>()
  readonly #udx: PathWatch
  readonly #tcp: TcpPathWatch
  readonly #libp2p: WarrenLibp2p
  /** Wakes both watches when a connection or a UDX stream is opened: each sleeps while it has nothing to watch. */
  readonly #wake = (): void => {
    this.#udx.wake()
    this.#tcp.wake()
  }
  #unwatchUdx: (() => void) | undefined

  /**
   * `silentMs`: silence after which a UDX path counts as lost (default 3000, see path-watch.ts). `onSuspect`: a TCP
   * direct path whose data went unacknowledged past a retransmission time-out (tcp-path-watch.ts), before it is
   * declared dead.
   */
  constructor(
    libp2p: WarrenLibp2p,
    hub: UdxHub,
    silentMs?: number,
    onSuspect?: (conn: Connection, why: string) => void,
  ) {
    this.#libp2p = libp2p
    this.#udx = new PathWatch(() => hub.all().flatMap((ep) => [...ep.streams()]), {
      silentMs,
      onSilent: (stream, ms) => {
        const now = Date.now()
        // streams that never became a connection (a half-open UDX handshake) leave no close to clear their entry
        for (const [k, v] of this.#reasons) if (now - v.at > REASON_TTL_MS) this.#reasons.delete(k)
        this.#reasons.set(`${stream.remoteHost}:${stream.remotePort}`, {
          why: `no packet for ${Math.round(ms)} ms`,
          at: now,
        })
      },
    })
    this.#tcp = new TcpPathWatch(
      () => libp2p.getConnections(),
      (conn, why) => {
        const key = punchedKey(conn)
        if (key !== undefined) this.#reasons.set(key, { why, at: Date.now() })
      },
      onSuspect,
    )
  }

  start(): void {
    this.#udx.start()
    this.#tcp.start()
    this.#libp2p.addEventListener('connection:open', this.#wake)
    this.#unwatchUdx ??= onAnyUdxStream(this.#wake)
  }

  stop(): void {
    this.#libp2p.removeEventListener('connection:open', this.#wake)
    this.#unwatchUdx?.()
    this.#unwatchUdx = undefined
    this.#udx.stop()
    this.#tcp.stop()
  }

  /** Whether both watches sleep (nothing to watch, or stopped). */
  get sleeping(): boolean {
    return this.#udx.sleeping && this.#tcp.sleeping
  }

  /** Why a watch closed `conn`, or undefined when none did; the reason is forgotten. */
  takeReason(conn: Connection): string | undefined {
    const key = punchedKey(conn)
    if (key === undefined) return undefined
    const why = this.#reasons.get(key)?.why
    this.#reasons.delete(key)
    return why
  }
}
