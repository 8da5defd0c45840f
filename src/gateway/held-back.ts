/**
 * The full path's answer to a keep-alive race the fast path avoids in its own pool (fast/upstreams.ts): a service's
 * idle timer starts when it has written its last response, and when a slow client held that response back (the
 * service stream paused), the service may have been idle for seconds by the time undici has read the end of it.
 * undici counts a pooled connection's idle time from there, so the next request could meet the service's close.
 *
 * undici tells no handler which connection serves it, so this follows its diagnostics channels: a request's
 * connection when its head is sent, the service's `Keep-Alive: timeout=` hint with the response head, and the end
 * of the exchange. A {@link StreamSocket} whose response was held back is let go (a FIN) once the service may have
 * been idle for as long as the pool would keep it: at once, or when that time comes with no new request on it.
 */
import { subscribe } from 'node:diagnostics_channel'
import { keepAliveTimeoutOf } from '../http/http1.ts'
import { StreamSocket } from '../http/stream-socket.ts'

/** undici's channel messages, the fields used here. */
interface SendHeaders {
  request: object
  socket: unknown
}
interface ResponseHeaders {
  request: object
  response: { headers: (Buffer | string)[] }
}
interface Trailers {
  request: object
}

/** What is known of the exchange a pooled service stream carries now. */
interface Exchange {
  socket: StreamSocket
  /** When the request's head went out, ms since the epoch. */
  since: number
  hintSec: number | undefined
}

/**
 * The error a stream is let go with: {@link isLetGo} tells the stream socket it is a clean close. Its code is
 * undici's for informational errors, so that undici fails no request queued for the connection because of it.
 */
export class LetGoError extends Error {
  readonly code = 'UND_ERR_INFO'
}

export const isLetGo = (err: Error): boolean => err instanceof LetGoError

function hintOf(headers: (Buffer | string)[]): number | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!
    if (name.length === 10 && name.toString().toLowerCase() === 'keep-alive') {
      const sec = keepAliveTimeoutOf(headers[i + 1]!.toString())
      if (sec !== undefined) return sec
    }
  }
  return undefined
}

let watching: { idleTimeoutMs: number; marginMs: number } | undefined
const exchanges = new WeakMap<object, Exchange>()

/**
 * Starts following undici's exchanges over stream sockets (once per process): a stream whose response was held back
 * is let go when the service may have been idle on it for `idleTimeoutMs`, or for its hint less `marginMs`.
 */
export function watchHeldBackResponses(idleTimeoutMs: number, marginMs: number): void {
  if (watching !== undefined) return
  watching = { idleTimeoutMs, marginMs }
  subscribe('undici:client:sendHeaders', (msg) => {
    const { request, socket } = msg as SendHeaders
    if (!(socket instanceof StreamSocket)) return
    socket.heldBack = false
    socket.exchanges++
    exchanges.set(request, { socket, since: Date.now(), hintSec: undefined })
  })
  subscribe('undici:request:headers', (msg) => {
    const { request, response } = msg as ResponseHeaders
    const ex = exchanges.get(request)
    if (ex !== undefined) ex.hintSec = hintOf(response.headers)
  })
  subscribe('undici:request:trailers', (msg) => {
    const ex = exchanges.get((msg as Trailers).request)
    if (ex === undefined || !ex.socket.heldBack || watching === undefined) return
    const { idleTimeoutMs: idle, marginMs } = watching
    const keepMs =
      (ex.hintSec === undefined ? idle : Math.min(idle, ex.hintSec * 1000 - marginMs)) - (Date.now() - ex.since)
    const socket = ex.socket
    const n = socket.exchanges
    const letGo = (): void => {
      // still idle after this exchange: no request went out on it since
      if (socket.exchanges === n && !socket.destroyed) socket.destroy(new LetGoError('held back past its keep-alive'))
    }
    // undici reuses a connection a turn of the event loop after its response ended: a microtask comes first
    if (keepMs <= 0) queueMicrotask(letGo)
    else setTimeout(letGo, keepMs).unref()
  })
}
