/**
 * A stand-in for one of a circuit's streams, given to js-libp2p's relay server in place of the real one so that its
 * `pipe` carries nothing ({@link spliceStreams} carries the bytes). The server still owns the circuit's life: its
 * shutdown, the reservation's expiry and its duration limit abort the stand-in, which aborts the real circuit; when
 * the real circuit ends, {@link StreamStandIn.end} closes the stand-in so that the server's pipe and its signals are
 * released.
 *
 * It has what the server's pipe uses of a stream: `message`/`close`/`remoteCloseWrite` events (only `close` is ever
 * dispatched), `send` (always accepts), `close`, `abort` and the status fields.
 */
export class StreamStandIn extends EventTarget {
  status: 'open' | 'closed' | 'aborted' = 'open'
  readStatus: 'readable' | 'closed' = 'readable'
  writeStatus: 'writable' | 'closed' = 'writable'
  remoteWriteStatus: 'writable' | 'closed' = 'writable'
  readonly #onAbort: (error: Error) => void

  constructor(onAbort: (error: Error) => void) {
    super()
    this.#onAbort = onAbort
  }

  send(_data: unknown): boolean {
    return true
  }

  async close(): Promise<void> {
    this.end()
  }

  abort(error: Error): void {
    if (this.status !== 'open') return
    this.end(error)
    this.#onAbort(error)
  }

  /** Closes the stand-in (the real circuit has ended), with the error it ended with, if any. */
  end(error?: Error): void {
    if (this.status !== 'open') return
    this.status = error === undefined ? 'closed' : 'aborted'
    this.readStatus = 'closed'
    this.writeStatus = 'closed'
    this.remoteWriteStatus = 'closed'
    const evt = new Event('close') as Event & { error?: Error }
    if (error !== undefined) evt.error = error
    this.dispatchEvent(evt)
  }
}
