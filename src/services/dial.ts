/**
 * The dialing side of `/warren/service/1.0.0`: open a stream on a connection, send the request header, and
 * turn the host's status into a WarrenError the user can act on.
 */
import type { Connection, NewStreamOptions, PeerId, Stream } from '@libp2p/interface'
import { WarrenError } from '../errors.ts'
import { OPTIMISTIC_SELECT } from '../p2p/patches/optimistic-select.ts'
import { sharedTimeout } from '../p2p/shared-timeout.ts'
import { readFrame } from './frame-io.ts'
import { decodeResponse, encodeRequest, SERVICE_PROTOCOL, Status } from './header.ts'

export interface OpenServiceOptions {
  signal?: AbortSignal
  /** Time for the host's answer (it includes the host's connect to the target), ms. */
  timeoutMs?: number
  /** This node's id, quoted in "not authorized" hints. */
  selfId?: string
  /** The TCP port the local client connected to, sent as the request's destination-port extension (tag 1). */
  port?: number
}

function statusError(peer: PeerId, service: string, status: number, reason: string, selfId?: string): WarrenError {
  const who = `node ${peer.toString()}`
  switch (status) {
    case Status.UNKNOWN_SERVICE:
      return new WarrenError('ERR_UNKNOWN_SERVICE', `${who} has no service "${service}"`, {
        hint: `Check the name; \`warren ls ${peer.toString()}\` lists the services it lets this node use.`,
        details: { peer: peer.toString(), service, reason },
      })
    case Status.NOT_AUTHORIZED:
      return new WarrenError('ERR_NOT_AUTHORIZED', `${who} does not allow this node to use "${service}"`, {
        hint: `Ask its owner to run \`warren allow ${service} ${selfId ?? '<this node id>'}\` or to send you a \`warren invite ${service}\` link.`,
        details: { peer: peer.toString(), service, reason },
      })
    case Status.TARGET_UNREACHABLE:
      return new WarrenError('ERR_TARGET_UNREACHABLE', `${who} could not reach the target of "${service}": ${reason}`, {
        hint: "The program behind the service is not running on that node, or the service's target is wrong.",
        details: { peer: peer.toString(), service, reason },
      })
    case Status.OVERLOADED:
      return new WarrenError('ERR_OVERLOADED', `${who} refused "${service}": ${reason}`, {
        hint: 'Try again later, or raise limits.maxStreams / limits.maxStreamsPerPeer on that node.',
        details: { peer: peer.toString(), service, reason },
      })
    default:
      return new WarrenError('ERR_PROTOCOL', `${who} rejected the request for "${service}": ${reason}`, {
        hint: 'The two nodes may run incompatible Warren versions; upgrade both.',
        details: { peer: peer.toString(), service, reason, status },
      })
  }
}

function unsupported(peer: PeerId, cause: unknown): WarrenError {
  return new WarrenError('ERR_PROTOCOL', `node ${peer} does not speak ${SERVICE_PROTOCOL}`, {
    hint: 'Is it a Warren node? Check the id or ticket.',
    cause,
  })
}

/** A service stream whose request is on its way, and the host's answer to it. */
export interface PendingServiceStream {
  stream: Stream
  /**
   * Resolves once the host answered OK, leaving the bytes after the status on the stream; rejects with the
   * WarrenError a refusal, a time-out or a bad answer means (the stream is aborted then).
   */
  answer: Promise<void>
  /** Bytes the caller sent on the stream before the answer came (the request header not included). */
  sentEarly: () => number
}

/**
 * Opens a service stream on `conn` and sends the request without waiting for the host: with optimistic protocol
 * selection the protocol id, the request header and whatever the caller sends next leave in the same writes. The
 * host answers one status before any byte of the target (docs/protocol.md), so the caller may send at once but
 * must read `answer` before it reads from the stream. Rejects when the stream cannot be opened at all.
 */
export async function startServiceStream(
  conn: Connection,
  service: string,
  opts: OpenServiceOptions = {},
): Promise<PendingServiceStream> {
  const peer = conn.remotePeer
  const timeoutMs = opts.timeoutMs ?? 30_000
  let request: Uint8Array
  try {
    request = encodeRequest({ service, port: opts.port })
  } catch (err) {
    throw new WarrenError('ERR_USAGE', `cannot ask node ${peer} for "${service}": ${(err as Error).message}`, {
      hint: 'Service names are 1-63 bytes; a destination port is 1-65535.',
      details: { peer: peer.toString(), service, ...(opts.port === undefined ? {} : { port: opts.port }) },
      cause: err,
    })
  }
  let stream: Stream
  try {
    // relayed connections through a bounded relay are "limited"; services run on them too
    // optimistic protocol select (src/p2p/patches/optimistic-select.ts): the protocol id leaves with the request
    // header, without waiting a round trip for the host's answer (a close before that answer sends its FIN after
    // it); a host without the protocol aborts the stream with UnsupportedProtocolError, which readAnswer reports
    stream = await conn.newStream(SERVICE_PROTOCOL, {
      signal: opts.signal ?? sharedTimeout(timeoutMs),
      runOnLimitedConnection: true,
      negotiateFully: false,
      [OPTIMISTIC_SELECT]: true,
    } as NewStreamOptions)
  } catch (err) {
    const e = err as Error
    if (e.name === 'UnsupportedProtocolError') throw unsupported(peer, err)
    if (e.name === 'TooManyOutboundProtocolStreamsError') {
      // libp2p's per-connection cap, set from this node's limits (src/services/host.ts streamsPerConnection)
      throw new WarrenError(
        'ERR_TOO_MANY_STREAMS',
        `this node already has its limit of service streams open to node ${peer} on one connection`,
        {
          hint: "Close some connections, or raise limits.maxStreamsPerPeer in this node's config.json (the ceiling per connection follows it).",
          cause: err,
        },
      )
    }
    throw new WarrenError('ERR_DIAL_FAILED', `could not open a stream to node ${peer}: ${e.message}`, { cause: err })
  }
  try {
    stream.send(request)
  } catch (err) {
    stream.abort(err as Error)
    throw new WarrenError('ERR_DIAL_FAILED', `could not open a stream to node ${peer}: ${(err as Error).message}`, {
      cause: err,
    })
  }
  let early = 0
  const send = stream.send
  stream.send = (data) => {
    early += data.byteLength
    return send.call(stream, data)
  }
  const answer = readAnswer(stream, peer, service, timeoutMs, opts)
  // the instance's own send again once answered; a caller that stops early (its client went away) must not leave
  // an unhandled rejection behind
  answer.then(
    () => {
      stream.send = send
    },
    () => {},
  )
  return { stream, answer, sentEarly: () => early }
}

async function readAnswer(
  stream: Stream,
  peer: PeerId,
  service: string,
  timeoutMs: number,
  opts: OpenServiceOptions,
): Promise<void> {
  try {
    const res = decodeResponse(await readFrame(stream, timeoutMs, opts.signal))
    if (res.status === Status.OK) return
    stream.abort(new Error(res.reason))
    throw statusError(peer, service, res.status, res.reason, opts.selfId)
  } catch (err) {
    if (err instanceof WarrenError) throw err
    const e = err as Error
    // the host's answer to the protocol: no such protocol, or not multistream-select at all
    if (e.name === 'UnsupportedProtocolError') throw unsupported(peer, err)
    if (e.name === 'NegotiationError') {
      throw new WarrenError('ERR_PROTOCOL', `node ${peer} sent a bad answer for "${service}": ${e.message}`, {
        hint: 'Is it a Warren node? Check the id or ticket.',
        cause: err,
      })
    }
    if (stream.status === 'aborted') {
      // this side gave up first (its client went away while the answer was on its way): not the host's doing
      throw new WarrenError(
        'ERR_STREAM_ABORTED',
        `the stream for "${service}" ended before node ${peer} answered: ${e.message}`,
        {
          cause: err,
        },
      )
    }
    stream.abort(e)
    if (e.name === 'FrameTimeoutError') {
      throw new WarrenError(
        'ERR_TIMEOUT',
        `node ${peer} did not answer the request for "${service}" within ${timeoutMs} ms`,
        {
          cause: err,
        },
      )
    }
    throw new WarrenError('ERR_PROTOCOL', `node ${peer} sent a bad answer for "${service}": ${e.message}`, {
      cause: err,
    })
  }
}

/** Opens a service stream on `conn`; resolves once the host answered OK. */
export async function openServiceStream(
  conn: Connection,
  service: string,
  opts: OpenServiceOptions = {},
): Promise<Stream> {
  const { stream, answer } = await startServiceStream(conn, service, opts)
  await answer
  return stream
}
