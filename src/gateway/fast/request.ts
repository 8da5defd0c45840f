/**
 * The request side of a fast-path exchange (connection.ts): a request head turned into an {@link Exchange} —
 * routed, its node resolved, a slot of the node's stream limit taken, the head rewritten for the service
 * (heads.ts) — and request bytes sent on the service stream with the client held back while the stream is full.
 * A request the fast path does not carry gives no exchange: the full path takes the connection and answers it.
 */
import type { Socket } from 'node:net'
import { BodyFramer, type RequestHead } from '../../http/http1.ts'
import { waitForRoom } from '../../p2p/stream-room.ts'
import type { NodeIds } from '../backend.ts'
import type { ForwardSpec } from '../gateway.ts'
import type { Exchange } from './exchange.ts'
import { upstreamRequestHead } from './heads.ts'
import type { FastPathOptions } from './types.ts'

/**
 * What the last exchange for a request head was built with and into: the service head, the pool key and the
 * description, the same strings while the route, the node and the client are the same (a string made anew would
 * be hashed anew by each Map it is looked up in).
 */
interface Built {
  path: string
  clientIp: string
  /** The Host the route asked for, if any (else `<service>.<base36>.<tld>`). */
  specHost: string | undefined
  base36: string
  tld: string
  prefix: string | undefined
  id: string
  service: string
  bytes: Buffer
  key: string
  describe: string
}

/** Request heads are shared between requests with the same text (http/head-memo.ts); what they were built into too. */
const built = new WeakMap<RequestHead, Built>()

/** The service head (heads.ts) as bytes, the pool key and the description for `head` routed to `spec` on `ids`. */
function buildFor(head: RequestHead, spec: ForwardSpec, ids: NodeIds, tld: string, clientIp: string): Built {
  const b = built.get(head)
  if (
    b !== undefined &&
    b.path === spec.path &&
    b.clientIp === clientIp &&
    b.specHost === spec.host &&
    b.base36 === ids.base36 &&
    b.tld === tld &&
    b.prefix === spec.prefix &&
    b.id === ids.id &&
    b.service === spec.service
  )
    return b
  const id = ids.id
  const host = spec.host ?? `${spec.service}.${ids.base36}.${tld}`
  const text = upstreamRequestHead(head.raw, {
    method: head.method,
    path: spec.path,
    clientIp,
    clientHost: head.host,
    host,
    prefix: spec.prefix,
    chunked: head.framing.kind === 'chunked',
  })
  const made: Built = {
    path: spec.path,
    clientIp,
    specHost: spec.host,
    base36: ids.base36,
    tld,
    prefix: spec.prefix,
    id,
    service: spec.service,
    bytes: Buffer.from(text, 'latin1'),
    key: `${id}/${spec.service}`,
    describe: `service "${spec.service}" on node ${id}`,
  }
  built.set(head, made)
  return made
}

/** The exchange for `head` from a client at `clientIp`, or undefined when the full path should answer it. */
export function startExchange(opts: FastPathOptions, head: RequestHead, clientIp: string): Exchange | undefined {
  const spec = opts.route(head)
  if (spec === undefined) return undefined
  let ids: NodeIds
  let release: () => void
  try {
    ids = opts.gateway.resolveNode(spec.node, spec.browser === true ? { learn: false } : undefined)
    release = opts.gateway.acquire(ids.id)
  } catch {
    return undefined // the full path answers with the exact page
  }
  const b = buildFor(head, spec, ids, opts.tld, clientIp)
  return {
    head,
    describe: b.describe,
    release,
    upHead: b.bytes,
    key: b.key,
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
    heldBack: false,
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
