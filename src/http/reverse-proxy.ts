/**
 * Carries one HTTP request to an upstream and its response back, streaming both bodies (nothing is buffered
 * beyond the socket and stream windows), with a time limit on the upstream's response head. Used by the gateway
 * and the HTTP proxy (upstream = a pooled service stream) and by `"type": "http"` services on the host side
 * (upstream = the TCP target). Upgrade requests (WebSockets) are carried by {@link proxyUpgrade}.
 */
import { type Agent, type ClientRequest, type IncomingMessage, request, type ServerResponse } from 'node:http'
import { type Duplex, PassThrough } from 'node:stream'
import { isWarrenError, WarrenError } from '../errors.ts'
import { type RawHeaders, requestHead, responseHeaders } from './forward-headers.ts'
import { sendHttpError, writeRawHttpError } from './http-errors.ts'

export interface Upstream {
  agent: Agent
  /** Path and query sent upstream. */
  path: string
  headers: RawHeaders
  /** Time for the upstream's response head, ms. */
  responseTimeoutMs: number
  maxHeaderBytes: number
  /** Names the upstream in error messages, e.g. `service "web" on node 12D3…`. */
  describe: string
  /** Last change to the response head before it goes out (e.g. rewriting `Location`). */
  rewriteResponse?: (raw: RawHeaders) => RawHeaders
  /** Sees each request to the upstream as it is made (the agent's keep-alive rules follow its exchanges). */
  sent?: (out: ClientRequest) => void
}

/** Methods a proxy may send again after a pooled connection turned out to be closed. */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT', 'TRACE'])

/** What went wrong with an upstream's answer: a head over the limit, not HTTP at all, or cut short. */
export type UpstreamFailure = 'head-too-large' | 'not-http' | 'incomplete'

/** The WarrenError the client sees for an upstream failure of `kind`. */
export function upstreamFailure(
  kind: UpstreamFailure,
  err: unknown,
  up: Pick<Upstream, 'describe' | 'responseTimeoutMs'>,
): WarrenError {
  const message = (err as Error).message
  if (kind === 'head-too-large') {
    return new WarrenError('ERR_HEADERS_TOO_LARGE', `${up.describe} sent a response head larger than allowed`, {
      hint: 'Raise proxy.maxHeaderBytes, or make the service send smaller headers.',
      cause: err,
    })
  }
  if (kind === 'not-http') {
    return new WarrenError('ERR_PROTOCOL', `${up.describe} did not answer with valid HTTP (${message})`, {
      hint: 'Is the service an HTTP server? Reach other protocols through SOCKS5 or CONNECT instead of the gateway.',
      cause: err,
    })
  }
  return new WarrenError(
    'ERR_PROTOCOL',
    `${up.describe} closed the connection without a complete HTTP response (${message})`,
    {
      hint: 'Is the service an HTTP server, and is it healthy? Its own logs should say why it hung up.',
      cause: err,
    },
  )
}

/** Turns an upstream failure of Node's HTTP client into the WarrenError the client sees. */
export function upstreamError(err: unknown, up: Pick<Upstream, 'describe' | 'responseTimeoutMs'>): WarrenError {
  if (isWarrenError(err)) return err
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'HPE_HEADER_OVERFLOW') return upstreamFailure('head-too-large', err, up)
  if (code?.startsWith('HPE_') === true) return upstreamFailure('not-http', err, up)
  return upstreamFailure('incomplete', err, up)
}

function timeoutError(up: Upstream): WarrenError {
  return new WarrenError('ERR_TIMEOUT', `${up.describe} sent no response within ${up.responseTimeoutMs} ms`, {
    hint: 'The service is slow or stuck; raise gateway.responseTimeoutMs for slow services.',
  })
}

/** True when `req` carries no body (no Content-Length above 0, no Transfer-Encoding). */
export function hasNoBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return (length === undefined || length === '0') && req.headers['transfer-encoding'] === undefined
}

/** How long the rest of a request body answered early is read and dropped before the connection is cut, ms. */
export const LINGER_MS = 5_000

/**
 * For a response that ends before its request body is through; called before the response's end, while `req` still
 * has its socket (Node detaches it then, and would no longer read the rest for a request someone else was reading),
 * and on a `req` its consumer has not destroyed (see {@link detachedBody}). The rest of the body is read and dropped,
 * so that a client held up writing it reads the response and can go on; one still sending after {@link LINGER_MS} is
 * cut.
 */
export function dropRestOfBody(req: IncomingMessage): void {
  const socket = req.socket
  if (req.complete || req.destroyed || socket === null) return
  req.unpipe()
  req.on('data', () => {})
  req.resume()
  const timer = setTimeout(() => socket.destroy(), LINGER_MS)
  timer.unref()
  const stop = (): void => clearTimeout(timer)
  req.once('end', stop)
  socket.once('close', stop)
}

/**
 * `req`'s body as a stream of its own for a consumer that destroys its body when it is done with it (undici does,
 * also when the response came before the body was through): destroying `req` would leave its connection stuck mid-body.
 * An error or an abort of `req` fails the copy.
 */
export function detachedBody(req: IncomingMessage): PassThrough {
  const body = new PassThrough()
  const fail = (err?: Error): void => {
    if (!req.complete) body.destroy(err ?? new Error('the request was aborted'))
  }
  req.once('error', fail)
  req.once('aborted', () => fail())
  req.once('close', () => fail())
  return req.pipe(body)
}

/** Forwards `req` and answers `res`; resolves when the exchange is over (either way). */
export function proxyRequest(req: IncomingMessage, res: ServerResponse, up: Upstream): Promise<void> {
  const method = req.method ?? 'GET'
  const bodyless = hasNoBody(req)
  return new Promise<void>((resolve) => {
    let done = false
    const finish = (): void => {
      if (!done) {
        done = true
        resolve()
      }
    }
    const attempt = (retry: boolean): void => {
      const out = request({
        agent: up.agent,
        method,
        path: up.path,
        headers: up.headers,
        setHost: false,
        maxHeaderSize: up.maxHeaderBytes,
      })
      up.sent?.(out)
      const timer = setTimeout(() => out.destroy(timeoutError(up)), up.responseTimeoutMs)
      const onClientGone = (): void => {
        if (!res.writableFinished) out.destroy()
      }
      res.once('close', onClientGone)
      out.on('response', (upRes) => {
        clearTimeout(timer)
        let head = responseHeaders(upRes.rawHeaders)
        if (up.rewriteResponse !== undefined) head = up.rewriteResponse(head)
        try {
          res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, head)
        } catch (err) {
          upRes.destroy()
          sendHttpError(res, upstreamError(err, up), { close: true })
          return finish()
        }
        upRes.once('end', () => {
          if (req.complete) return
          // answered before the request body was through: the rest has nowhere to go
          req.unpipe(out)
          dropRestOfBody(req)
        })
        upRes.pipe(res)
        upRes.on('error', () => res.destroy())
        upRes.on('aborted', () => res.destroy())
        res.once('close', () => {
          if (!upRes.complete) upRes.destroy()
          finish()
        })
      })
      out.on('error', (err) => {
        clearTimeout(timer)
        res.off('close', onClientGone)
        // a pooled stream the service had already closed: try once more on a fresh one
        if (
          retry &&
          out.reusedSocket &&
          bodyless &&
          IDEMPOTENT.has(method) &&
          !res.headersSent &&
          !isWarrenError(err)
        ) {
          attempt(false)
          return
        }
        req.unpipe(out)
        const e = upstreamError(err, up)
        // an oversized head from the service is the service's fault: 502, not the client's 431
        sendHttpError(res, e, { close: !req.complete, ...(e.code === 'ERR_HEADERS_TOO_LARGE' ? { status: 502 } : {}) })
        finish()
      })
      if (bodyless) {
        if (req.complete) out.end()
        else req.once('end', () => out.end())
        req.resume()
      } else req.pipe(out)
    }
    attempt(true)
  })
}

/**
 * Joins two duplexes both ways with half-close; an error on either destroys both. Resolves once both have closed,
 * also when one had closed before the join (its 'close' came and went while the other was being opened).
 */
export function joinDuplexes(a: Duplex, b: Duplex): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0
    const fail = (): void => {
      a.destroy()
      b.destroy()
    }
    a.on('error', fail)
    b.on('error', fail)
    // a side that closed without ending its output towards the other (reset, error) takes the other down
    const onClose = (x: Duplex, other: Duplex) => (): void => {
      if (!x.readableEnded && !other.destroyed) other.destroy()
      if (++closed === 2) resolve()
    }
    for (const [x, other] of [
      [a, b],
      [b, a],
    ] as const) {
      if (x.closed) onClose(x, other)()
      else x.once('close', onClose(x, other))
    }
    a.pipe(b)
    b.pipe(a)
  })
}

/**
 * Carries an Upgrade request (WebSocket): opens a fresh upstream connection, writes the request head and what
 * the client already sent, then joins the two byte streams. The upstream's `101` (or refusal) flows back as is.
 */
export async function proxyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  up: { open: () => Promise<Duplex>; path: string; headers: RawHeaders },
): Promise<void> {
  let upstream: Duplex
  try {
    upstream = await up.open()
  } catch (err) {
    writeRawHttpError(socket, err)
    return
  }
  if (socket.destroyed) {
    // the client went away while the upstream was being opened: the upstream gets no request, only its end
    upstream.destroy()
    return
  }
  upstream.write(requestHead(req.method ?? 'GET', up.path, up.headers))
  if (head.length > 0) upstream.write(head)
  await joinDuplexes(socket, upstream)
}
