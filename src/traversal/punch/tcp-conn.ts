/**
 * A libp2p `MultiaddrConnection` over a TCP socket Warren connected itself (a TCP simultaneous open through two NATs,
 * see tcp-punch.ts), so that libp2p's upgrader runs Noise and Yamux on it as on any TCP connection. @libp2p/tcp has
 * the same class but does not export it. Writes of one event-loop turn leave as one `writev`, as on Warren's other
 * TCP connections (src/p2p/patches/coalesce.ts).
 *
 * @packageDocumentation
 */
import type { Socket } from 'node:net'
import type { AbortOptions, Logger, MessageStreamDirection } from '@libp2p/interface'
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'
import { closeAndWait } from '../../p2p/close-wait.ts'
import { coalesceSocketWrites } from '../../p2p/patches/coalesce.ts'

export interface TcpConnInit {
  socket: Socket
  remoteAddr: Multiaddr
  direction: MessageStreamDirection
  log: Logger
  /** Close after this long without traffic (default 2 minutes, as for libp2p's TCP). */
  inactivityTimeout?: number
}

export class TcpMultiaddrConnection extends AbstractMultiaddrConnection {
  /** Named as in @libp2p/tcp, which is what write coalescing looks for. */
  readonly socket: Socket

  constructor(init: TcpConnInit) {
    super({ ...init, inactivityTimeout: init.inactivityTimeout ?? 120_000 })
    const socket = init.socket
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('data', (buf: Buffer) => this.onData(buf))
    socket.on('error', (err: Error) => {
      this.log('tcp error %s - %e', init.remoteAddr, err)
      this.abort(err)
    })
    socket.once('end', () => this.onTransportClosed())
    socket.once('close', (hadError: boolean) => {
      if (hadError) this.abort(new Error('TCP transmission error'))
      else this.onTransportClosed()
    })
    socket.on('drain', () => this.safeDispatchEvent('drain'))
    coalesceSocketWrites(this)
  }

  sendData(data: Uint8ArrayList): { sentBytes: number; canSendMore: boolean } {
    let sentBytes = 0
    let canSendMore = true
    for (const buf of data) {
      sentBytes += buf.byteLength
      canSendMore = this.socket.write(buf)
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await closeAndWait(this.socket, () => this.socket.destroySoon(), options)
  }

  sendReset(): void {
    if (this.socket.writableEnded) this.socket.destroy()
    else this.socket.resetAndDestroy()
  }

  sendPause(): void {
    this.socket.pause()
  }

  sendResume(): void {
    this.socket.resume()
  }
}
