/**
 * The request side of a fast-path exchange (connection.ts): a request head turned into an {@link Exchange} —
 * routed, its node resolved, a slot of the node's stream limit taken, the head rewritten for the service
 * (heads.ts) — and request bytes sent on the service stream with the client held back while the stream is full.
 * A request the fast path does not carry gives no exchange: the full path takes the connection and answers it.
 */
import type { Socket } from 'node:net'
import { BodyFramer, type RequestHead } from '../../http/http1.ts'
import { waitForRoom } from '../../p2p/stream-room.ts'
import type { Exchange } from './exchange.ts'
import { upstreamRequestHead } from './heads.ts'
import type { FastPathOptions } from './types.ts'

/** The last service head built for a request head: the same bytes while the route and the client are the same. */
interface Built {
  path: string
  clientIp: string
  host: string
  prefix: string | undefined
  bytes: Buffer
}

/** Request heads are shared between requests with the same text (http/head-memo.ts); their service heads too. */
const built = new WeakMap<RequestHead, Built>()

/** The request head sent to the service (heads.ts), as bytes; never written to by its users. */
function upstreamHead(
  head: RequestHead,
  path: string,
  clientIp: string,
  host: string,
  prefix: string | undefined,
): Buffer {
  const b = built.get(head)
  if (b !== undefined && b.path === path && b.clientIp === clientIp && b.host === host && b.prefix === prefix)
    return b.bytes
  const text = upstreamRequestHead(head.raw, {
    method: head.method,
    path,
    clientIp,
    clientHost: head.host,
    host,
    prefix,
    chunked: head.framing.kind === 'chunked',
  })
  const bytes = Buffer.from(text, 'latin1')
  built.set(head, { path, clientIp, host, prefix, bytes })
  return bytes
}

/** The exchange for `head` from a client at `clientIp`, or undefined when the full path should answer it. */
export function startExchange(opts: FastPathOptions, head: RequestHead, clientIp: string): Exchange | undefined {
  const spec = opts.route(head)
  if (spec === undefined) return undefined
  let ids: { id: string; base36: string }
  let release: () => void
  try {
    ids = opts.gateway.resolveNode(spec.node, spec.browser === true ? { learn: false } : undefined)
    release = opts.gateway.acquire(ids.id)
  } catch {
    return undefined // the full path answers with the exact page
  }
  const upHead = upstreamHead(
    head,
    spec.path,
    clientIp,
    spec.host ?? `${spec.service}.${ids.base36}.${opts.tld}`,
    spec.prefix,
  )
  return {
    head,
    describe: `service "${spec.service}" on node ${ids.id}`,
    release,
    upHead,
    key: `${ids.id}/${spec.service}`,
    node: ids.id,
    service: spec.service,
    prefix: spec.prefix,
    req: new BodyFramer(head.framing),
    res: undefined,
    resBuf: undefined,
    started: false,
    wrapChunks: false,
    reusable: true,
    retried: false,
    bodyless: head.framing.kind === 'none',
    upstream: undefined,
    bytesUp: 0,
    bytesDown: 0,
    since: Date.now(),
  }
}

/**
 * Sends `data` on the exchange's stream; `headBytes` of it are the request head (not counted as body). When the
 * stream is full the client is paused, and resumed once the stream has room if `wanted()` still holds; returns
 * false then.
 */
export function sendUp(
  ex: Exchange,
  data: Uint8Array,
  headBytes: number,
  client: Socket,
  wanted: () => boolean,
): boolean {
  const up = ex.upstream!
  ex.bytesUp += data.byteLength - headBytes
  try {
    if (!up.stream.send(data)) {
      client.pause()
      waitForRoom(up.stream).then(
        () => {
          if (wanted()) client.resume()
        },
        () => {},
      )
      return false
    }
  } catch {
    // the stream is gone: its end event settles the exchange
  }
  return true
}
