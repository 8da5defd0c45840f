/**
 * One libp2p stream seen as a connection (a `MultiaddrConnection`), so that it can be upgraded with Noise and Yamux
 * like a socket: what the WebRTC tunnel (tunnel.ts) runs over a data channel. Bytes, half-closes, resets and pauses
 * pass through to the stream.
 */
import type { AbortOptions, Stream } from '@libp2p/interface'
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'

export class StreamConnection extends AbstractMultiaddrConnection {
  readonly #stream: Stream

  constructor(stream: Stream, remoteAddr: Multiaddr) {
    super({ remoteAddr, direction: stream.direction, log: stream.log.newScope('tunnel') })
    this.#stream = stream
    stream.addEventListener('message', (evt) => this.onData(evt.data))
    stream.addEventListener('drain', () => this.safeDispatchEvent('drain'))
    stream.addEventListener('remoteCloseWrite', () => {
      this.onRemoteCloseWrite()
      this.close().catch((err: Error) => this.abort(err))
    })
    stream.addEventListener('close', (evt) => this.onTransportClosed(evt.error))
  }

  sendData(data: Uint8ArrayList): { sentBytes: number; canSendMore: boolean } {
    return { sentBytes: data.byteLength, canSendMore: this.#stream.send(data) }
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.#stream.close(options)
  }

  sendReset(err: Error): void {
    this.#stream.abort(err)
  }

  sendPause(): void {
    this.#stream.pause()
  }

  sendResume(): void {
    this.#stream.resume()
  }
}
