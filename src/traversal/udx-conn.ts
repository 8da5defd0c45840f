/**
 * A libp2p `MultiaddrConnection` over one udx-native stream, so that libp2p's upgrader can run Noise and Yamux on a UDX
 * direct path exactly as it does on a TCP socket (compare `@libp2p/tcp`'s socket-to-conn).
 *
 * @packageDocumentation
 */
import type { AbortOptions, CounterGroup, Logger, MessageStreamDirection } from '@libp2p/interface'
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { UDXStream } from 'udx-native'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface UdxConnInit {
  stream: UDXStream
  remoteAddr: Multiaddr
  direction: MessageStreamDirection
  log: Logger
  metrics?: CounterGroup
  /** Close after this long without traffic (default 2 minutes, as for TCP). */
  inactivityTimeout?: number
}

export class UdxMultiaddrConnection extends AbstractMultiaddrConnection {
  readonly stream: UDXStream

  constructor(init: UdxConnInit) {
    super({ ...init, inactivityTimeout: init.inactivityTimeout ?? 120_000 })
    this.stream = init.stream
    const stream = init.stream
    stream.setKeepalive(5_000)
    stream.on('data', (buf: Uint8Array) => this.onData(buf))
    stream.on('error', (err: Error) => {
      this.log('udx error %s - %e', init.remoteAddr, err)
      this.abort(err)
    })
    // The remote ended its side: like TCP without half-open, finish ours and let 'close' tear down.
    stream.once('end', () => {
      stream.end()
    })
    stream.once('close', () => this.onTransportClosed())
    stream.on('drain', () => this.safeDispatchEvent('drain'))
  }

  sendData(data: Uint8ArrayList): { sentBytes: number; canSendMore: boolean } {
    // Noise hands over a 2-byte length prefix and the ciphertext as separate chunks; UDX does not coalesce writes, so
    // writing them one by one would send tiny packets. One write per call keeps packets full.
    const sentBytes = data.byteLength
    const canSendMore = this.stream.write(data.subarray())
    return { sentBytes, canSendMore }
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    if (this.stream.destroyed) return
    const closed = new Promise<void>((resolve) => this.stream.once('close', () => resolve()))
    this.stream.end()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.stream.destroy()
        reject(options?.signal?.reason ?? new Error('aborted'))
      }
      options?.signal?.addEventListener('abort', onAbort, { once: true })
      closed.then(() => {
        options?.signal?.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }

  sendReset(): void {
    this.stream.destroy()
  }

  sendPause(): void {
    this.stream.pause()
  }

  sendResume(): void {
    this.stream.resume()
  }
}
