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
import { Uint8ArrayList } from 'uint8arraylist'
import { closeAndWait } from '../close-wait.ts'
import { KEEPALIVE_MS } from './path-watch.ts'

/** Deliver gathered packets at once when this many bytes are waiting (about one Noise message). */
const DELIVER_BYTES = 64 * 1024

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
  /** Received data not yet handed to libp2p: finished runs of packets that lay next to each other in memory … */
  #pending: Uint8Array[] = []
  /** … and the run still growing, as offsets into udx's read buffer (no view is made per packet). */
  #run: ArrayBufferLike | undefined
  #runStart = 0
  #runEnd = 0
  #pendingBytes = 0
  #deliverScheduled = false

  constructor(init: UdxConnInit) {
    super({ ...init, inactivityTimeout: init.inactivityTimeout ?? 120_000 })
    this.stream = init.stream
    const stream = init.stream
    stream.setKeepalive(KEEPALIVE_MS) // keeps NAT mappings fresh and lets PathWatch spot a dead path (path-watch.ts)
    stream.on('data', (buf: Uint8Array) => this.#onPacket(buf))
    stream.on('error', (err: Error) => {
      this.log('udx error %s - %e', init.remoteAddr, err)
      this.abort(err)
    })
    // The remote ended its side: like TCP without half-open, finish ours and let 'close' tear down.
    stream.once('end', () => {
      this.#deliver()
      stream.end()
    })
    stream.once('close', () => {
      this.#deliver()
      this.onTransportClosed()
    })
    stream.on('drain', () => this.safeDispatchEvent('drain'))
  }

  /**
   * udx-native emits one 'data' event per UDP packet (~1.2–1.4 KB). Handing each to libp2p made Noise reassemble and
   * decrypt 64 KiB messages from ~50 separate buffers (one cipher update and one allocation each) and run the message
   * event path ~50 times per message. Packets are gathered instead until the event loop has read what the socket had
   * (setImmediate runs after the poll phase) or 64 KiB are waiting, and go up as one chunk. Consecutive packets sit
   * next to each other in udx's read buffer, so a run of them becomes one view without copying.
   */
  #onPacket(buf: Uint8Array): void {
    if (buf.buffer === this.#run && buf.byteOffset === this.#runEnd) this.#runEnd += buf.byteLength
    else {
      this.#endRun()
      this.#run = buf.buffer
      this.#runStart = buf.byteOffset
      this.#runEnd = buf.byteOffset + buf.byteLength
    }
    this.#pendingBytes += buf.byteLength
    if (this.#pendingBytes >= DELIVER_BYTES) this.#deliver()
    else if (!this.#deliverScheduled) {
      this.#deliverScheduled = true
      setImmediate(() => {
        this.#deliverScheduled = false
        this.#deliver()
      })
    }
  }

  #endRun(): void {
    if (this.#run === undefined) return
    this.#pending.push(Buffer.from(this.#run, this.#runStart, this.#runEnd - this.#runStart))
    this.#run = undefined
  }

  #deliver(): void {
    if (this.#pendingBytes === 0) return
    this.#endRun()
    const chunks = this.#pending
    this.#pending = []
    this.#pendingBytes = 0
    this.onData(chunks.length === 1 ? chunks[0]! : new Uint8ArrayList(...chunks))
  }

  sendData(data: Uint8ArrayList): { sentBytes: number; canSendMore: boolean } {
    // Each Noise message comes as a 2-byte length prefix and the ciphertext. The chunks are written one by one, without
    // copying them into one buffer: the writes of one turn reach udx as one writev (streamx batches them until the next
    // microtask) and libudx fills each packet from as many chunks as fit, so packets stay full.
    let canSendMore = true
    for (const buf of data) canSendMore = this.stream.write(buf)
    return { sentBytes: data.byteLength, canSendMore }
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await closeAndWait(this.stream, () => this.stream.end(), options)
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
