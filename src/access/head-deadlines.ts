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

/** A connection's head deadline: one timer for the connection's life, re-armed for each head it waits for. */
interface Waiter {
  readonly socket: Socket
  timer: NodeJS.Timeout
  /** Not waiting (a head arrived); the timer may still fire once and then does nothing. */
  off: boolean
  /** The deadline runs from now: the first head of a connection, or bytes of a later one were seen. */
  started: boolean
  /** `bytesRead` when the wait for a later head began. */
  seen: number
}

export class HeadDeadlines {
  readonly #timeoutMs: number
  /** Connections with a deadline timer, until they close. */
  readonly #waiters = new Map<Duplex, Waiter>()

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs
  }

  /** A new connection: its first bytes must make a whole head in time. */
  start(socket: Socket): void {
    this.#arm(socket, true)
  }

  /** The head arrived (or the connection speaks SOCKS5, which has its own deadline). */
  arrived(socket: Duplex): void {
    const w = this.#waiters.get(socket)
    if (w !== undefined) w.off = true
  }

  /** The connection closed: its timer goes. */
  closed(socket: Duplex): void {
    const w = this.#waiters.get(socket)
    if (w === undefined) return
    clearTimeout(w.timer)
    this.#waiters.delete(socket)
  }

  /**
   * A keep-alive connection waits for its next request head: that head too must arrive within the deadline of its
   * first byte (an idle connection is left to the keep-alive timeout). `null`: the response finished after the
   * socket was detached.
   */
  awaitNext(socket: Duplex | null): void {
    if (socket === null || socket.destroyed) return
    this.#arm(socket as Socket, false)
  }

  #arm(socket: Socket, started: boolean): void {
    const w = this.#waiters.get(socket)
    if (w === undefined) {
      const waiter: Waiter = {
        socket,
        timer: setTimeout(() => this.#check(waiter), this.#timeoutMs),
        off: false,
        started,
        seen: socket.bytesRead,
      }
      this.#waiters.set(socket, waiter)
      return
    }
    w.off = false
    w.started = started
    w.seen = socket.bytesRead
    w.timer.refresh() // re-arms a timer that fired too
  }

  #check(w: Waiter): void {
    if (w.off) return
    if (w.started) {
      // a whole deadline after the connection opened, or after a later head's first bytes, the head is not complete
      this.closed(w.socket)
      this.#timedOut(w.socket)
      return
    }
    w.started = w.socket.bytesRead !== w.seen
    w.timer.refresh()
  }

  #timedOut(socket: Socket): void {
    if (socket.writable) writeRawHttpError(socket, headTimeout(this.#timeoutMs), { status: 408 })
    else socket.destroy()
    setTimeout(() => socket.destroy(), 1_000).unref()
  }
}
