/**
 * The local listeners nftables redirects captured connections to (127.0.0.1 and ::1, ephemeral ports). Each
 * connection's original destination is read from conntrack, mapped back to (node, service) through the address
 * table, and joined to a service stream exactly like a SOCKS5 tunnel ({@link openTunnel}), with the original
 * destination port in the request header. A destination that is no
 * service address, or a service that cannot be had, ends the client's connection with a reset at once.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { toWarrenError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { LogThrottle } from '../../log-throttle.ts'
import { type DescriptorBudget, processDescriptors } from '../../open-files.ts'
import { abortLocal } from '../../p2p/pipe.ts'
import { openTunnel, type TunnelContext } from '../tunnels.ts'
import { originalDestination } from './original-dst.ts'

export interface CaptureCounters {
  /** Connections accepted. */
  accepted: number
  /** Joined to a service stream. */
  tunneled: number
  /** Reset: no service address, or the service stream could not be opened. */
  refused: number
  /** Open now. */
  active: number
}

export class TransparentListener {
  readonly #ctx: TunnelContext
  readonly #servers = new Map<4 | 6, Server>()
  readonly #sockets = new Set<Socket>()
  readonly counters: CaptureCounters = { accepted: 0, tunneled: 0, refused: 0, active: 0 }
  readonly #fds: DescriptorBudget
  /** Refusals at the open-file limit, at warn: one line, then a count once a minute. */
  readonly #fileLimit: LogThrottle

  private constructor(ctx: TunnelContext, fds: DescriptorBudget) {
    this.#ctx = ctx
    this.#fds = fds
    this.#fileLimit = new LogThrottle({ intervalMs: 60_000, emit: (line) => ctx.log('warn', line) })
  }

  /** Listens on 127.0.0.1 and, where the host has it, on ::1 (without ::1, IPv6 is not captured). */
  static async start(
    ctx: TunnelContext & { log: Logger },
    /** One descriptor per connection, under the open-file limit (default: the process's). */
    fds: DescriptorBudget = processDescriptors(),
  ): Promise<TransparentListener> {
    const l = new TransparentListener(ctx, fds)
    await l.#listen(4, '127.0.0.1')
    await l
      .#listen(6, '::1')
      .catch((err: Error) => ctx.log('warn', `transparent: no IPv6 listener on ::1: ${err.message}`))
    return l
  }

  /** The listeners' ports by family. */
  get ports(): { 4: number; 6?: number | undefined } {
    const port = (f: 4 | 6): number | undefined => {
      const a = this.#servers.get(f)?.address()
      return typeof a === 'object' && a !== null ? a.port : undefined
    }
    return { 4: port(4)!, 6: port(6) }
  }

  #listen(family: 4 | 6, host: string): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (s) =>
      this.#onConnection(s, family),
    )
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port: 0, ipv6Only: family === 6 }, () => {
        server.off('error', reject)
        server.on('error', (err) => this.#ctx.log('warn', `transparent listener: ${err.message}`))
        this.#servers.set(family, server)
        resolve()
      })
    })
  }

  #onConnection(socket: Socket, family: 4 | 6): void {
    const release = this.#fds.take()
    if (release === undefined) {
      this.counters.accepted++
      this.counters.refused++
      this.#fileLimit.log(
        'file-limit',
        `transparent: a connection reset: ERR_FILE_LIMIT: ${this.#fds.describe()}`,
        'connections reset at the open-file limit',
      )
      socket.on('error', () => {})
      socket.resetAndDestroy()
      return
    }
    socket.once('close', release)
    this.counters.accepted++
    this.counters.active++
    this.#sockets.add(socket)
    socket.on('error', () => {})
    socket.once('close', () => {
      this.counters.active--
      this.#sockets.delete(socket)
    })
    let dst: { address: string; port: number }
    try {
      dst = originalDestination(socket, family)
    } catch (err) {
      this.#refuse(socket, `a connection without an original destination: ${(err as Error).message}`)
      return
    }
    const where = family === 6 ? `[${dst.address}]:${dst.port}` : `${dst.address}:${dst.port}`
    openTunnel(dst.address, this.#ctx, { port: dst.port }).then(
      (join) => {
        this.counters.tunneled++
        join(socket)
      },
      (err: unknown) => {
        const e = toWarrenError(err)
        this.#refuse(socket, `connection to ${where} reset: ${e.code}: ${e.message}`)
      },
    )
  }

  #refuse(socket: Socket, why: string): void {
    this.counters.refused++
    this.#ctx.log('info', `transparent: ${why}`)
    socket.resetAndDestroy()
  }

  async close(): Promise<void> {
    this.#fileLimit.close()
    const closed = [...this.#servers.values()].map((s) => new Promise<void>((r) => s.close(() => r())))
    for (const s of this.#sockets) abortLocal(s, new Error('transparent mode stopped'))
    await Promise.all(closed)
    this.#servers.clear()
  }
}
