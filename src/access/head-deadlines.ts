/**
 * Request-head deadlines of the access port: the first request head (or SOCKS5 greeting) of a connection, and each
 * later head on a keep-alive connection, must arrive within `proxy.headersTimeoutMs`; otherwise the client gets
 * 408 ERR_TIMEOUT and the connection is closed. Node's own `headersTimeout` only runs on servers that listen
 * themselves, which the access port's `http.Server` does not (the listener hands it connections).
 */
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { WarrenError } from '../errors.ts'
import { writeRawHttpError } from '../http/http-errors.ts'

/** The error a client gets when its request head is late. */
export function headTimeout(timeoutMs: number): WarrenError {
  return new WarrenError('ERR_TIMEOUT', `the request head did not arrive within ${timeoutMs} ms`, {
    hint: 'Send the whole request head at once, or raise proxy.headersTimeoutMs.',
  })
}

export class HeadDeadlines {
  readonly #timeoutMs: number
  /** Connections waiting for a request head, with their timer. */
  readonly #waiting = new Map<Duplex, NodeJS.Timeout>()

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs
  }

  /** A new connection: its first bytes must make a whole head in time. */
  start(socket: Socket): void {
    this.#waiting.set(
      socket,
      setTimeout(() => this.#timedOut(socket), this.#timeoutMs),
    )
  }

  /** The head arrived (or the connection closed, or speaks SOCKS5 with its own deadline). */
  arrived(socket: Duplex): void {
    const timer = this.#waiting.get(socket)
    if (timer !== undefined) {
      clearTimeout(timer)
      this.#waiting.delete(socket)
    }
  }

  /**
   * A keep-alive connection waits for its next request head: that head too must arrive within the deadline of its
   * first byte (an idle connection is left to the keep-alive timeout). `null`: the response finished after the
   * socket was detached.
   */
  awaitNext(socket: Duplex | null): void {
    if (socket === null || socket.destroyed) return
    this.arrived(socket)
    const s = socket as Socket
    const seen = s.bytesRead
    let started = false
    const check = (): void => {
      if (started) {
        // a whole deadline after its first bytes were seen, the head is still not complete
        this.#timedOut(s)
        return
      }
      started = s.bytesRead !== seen
      this.#waiting.set(socket, setTimeout(check, this.#timeoutMs))
    }
    this.#waiting.set(socket, setTimeout(check, this.#timeoutMs))
  }

  #timedOut(socket: Socket): void {
    this.#waiting.delete(socket)
    if (socket.writable) writeRawHttpError(socket, headTimeout(this.#timeoutMs), { status: 408 })
    else socket.destroy()
    setTimeout(() => socket.destroy(), 1_000).unref()
  }
}
