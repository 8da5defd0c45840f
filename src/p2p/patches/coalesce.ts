/**
 * Write coalescing for libp2p's socket transports: the writes a connection makes within one turn of the event loop
 * leave in one socket write instead of one each.
 *
 * Why: every Yamux frame becomes one Noise message, and @libp2p/tcp writes each Noise message as two `socket.write`
 * calls (2-byte length, then ciphertext), each a syscall and often a packet of its own. A small proxied HTTP request
 * is a data frame plus a window update each way, so the per-message cost (syscalls, wake-ups on the far side)
 * dominated the gateway's CPU time. Upstream: @libp2p/tcp writes per buffer, @chainsafe/libp2p-yamux sends a window
 * update per data frame received, @libp2p/websockets sends one WebSocket message per buffer.
 *
 * How, without touching node_modules: `coalescing(tcp())` wraps the transport so the upgrader it is handed sees each
 * new MultiaddrConnection first; for a TCP one the connection's `sendData` (the AbstractMultiaddrConnection hook
 * every send goes through) corks the net.Socket on its first write of the turn and uncorks it in `setImmediate` (or,
 * when that write is the muxer's batch below, right after the batch is written), so Node writes everything queued
 * meanwhile with one `writev`. Back-pressure is Node's own: a corked socket's
 * `write()` still returns false past its high-water mark and 'drain' still follows, and once that much is queued the
 * socket is uncorked at once (bulk transfers write as before). `end()` uncorks by itself; a reset discards.
 * WebSocket connections get the same through their own buffer (one WebSocket message per turn), flushed before a
 * close.
 *
 * One level up, `batching(yamux())` does the same for the muxer's frames: those of one turn reach Noise as one
 * message, so one encryption (and on the far side one decryption and one dispatch) serves many frames; see
 * {@link batchFrames}.
 *
 * @example
 * ```ts
 * createLibp2p({ transports: [coalescing(tcp()), coalescing(webSockets())], streamMuxers: [batching(yamux())] })
 * ```
 */
import { Socket } from 'node:net'
import type { MessageStream, MultiaddrConnection, StreamMuxerFactory, Transport, Upgrader } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { quietNoiseDecoder } from './noise-crypto.ts'
import { patchMissed } from './status.ts'
import { indexStreams } from './stream-index.ts'

interface SendResult {
  sentBytes: number
  canSendMore: boolean
}

/** The parts of @libp2p/utils' AbstractMultiaddrConnection (and its TCP and WebSocket subclasses) used here. */
interface HookableConnection {
  sendData?: (data: Uint8ArrayList) => SendResult
  sendClose?: (options?: unknown) => Promise<void>
  /** @libp2p/tcp's net.Socket. */
  socket?: unknown
  /** @libp2p/websockets' WebSocket (Node's WHATWG WebSocket when dialing, a `ws` adapter when listening). */
  websocket?: { send(data: Uint8Array | ArrayBuffer): void; bufferedAmount: number; readyState: number }
  /** @libp2p/websockets' limit of `bufferedAmount` before it reports back-pressure. */
  maxBufferedAmount?: number
  abort(err: Error): void
}

/** A WebSocket connection, or a muxer's batch of frames, is flushed at once past this many bytes. */
const FLUSH_BYTES = 64 * 1024
/** A batch of frames up to this size is copied into one buffer before it is encrypted. */
const COPY_BELOW = 16 * 1024
const WS_OPEN = 1

/**
 * Set while a muxer's batch of frames is being sent from its `setImmediate` ({@link batchFrames}): a transport
 * connection that starts holding writes then puts its flush here, to run as that batch's send returns, instead of
 * in a `setImmediate` of its own. One scheduled from within the check phase would run only in the next turn of
 * the event loop, after its poll phase: every message would leave a turn late.
 */
let batchEnd: (() => void)[] | undefined

/** Runs `flush` once the batch being sent has been handed over, or else at the end of this turn. */
function flushAtEnd(flush: () => void): void {
  if (batchEnd !== undefined) batchEnd.push(flush)
  else setImmediate(flush)
}

/** Coalesces one TCP connection's writes per event-loop turn; false when `maConn` is not a TCP connection. */
export function coalesceSocketWrites(maConn: MultiaddrConnection): boolean {
  const conn = maConn as MultiaddrConnection & HookableConnection
  const socket = conn.socket
  if (!(socket instanceof Socket) || typeof conn.sendData !== 'function') return false
  const sendData = conn.sendData.bind(conn)
  let corked = false
  const uncork = (): void => {
    if (!corked) return
    corked = false
    if (socket.writableCorked > 0) socket.uncork()
  }
  conn.sendData = (data) => {
    if (!corked && !socket.destroyed && !socket.writableEnded) {
      socket.cork()
      corked = true
      flushAtEnd(uncork)
    }
    const result = sendData(data)
    if (socket.writableLength >= socket.writableHighWaterMark) uncork()
    return result
  }
  return true
}

/** Sends one WebSocket connection's writes of an event-loop turn as one message; false when it is not one. */
export function coalesceWebSocketWrites(maConn: MultiaddrConnection): boolean {
  const conn = maConn as MultiaddrConnection & HookableConnection
  const ws = conn.websocket
  if (ws === undefined || typeof conn.sendData !== 'function' || typeof conn.sendClose !== 'function') return false
  const sendData = conn.sendData.bind(conn)
  const sendClose = conn.sendClose.bind(conn)
  const pending = new Uint8ArrayList()
  let scheduled = false
  const flush = (): SendResult => {
    scheduled = false
    if (pending.byteLength === 0 || ws.readyState !== WS_OPEN) {
      pending.consume(pending.byteLength)
      return { sentBytes: 0, canSendMore: true }
    }
    const one = new Uint8ArrayList(pending.subarray())
    pending.consume(pending.byteLength)
    return sendData(one)
  }
  const maxBuffered = conn.maxBufferedAmount ?? 4 * 1024 * 1024
  const flushLater = (): void => {
    try {
      flush()
    } catch (err) {
      conn.abort(err as Error)
    }
  }
  conn.sendData = (data) => {
    pending.append(data)
    // past either mark, send now so that back-pressure is reported (and 'drain' follows) as without coalescing
    if (pending.byteLength >= FLUSH_BYTES || ws.bufferedAmount + pending.byteLength >= maxBuffered) {
      const result = flush()
      return { sentBytes: data.byteLength, canSendMore: result.canSendMore }
    }
    if (!scheduled) {
      scheduled = true
      flushAtEnd(flushLater)
    }
    return { sentBytes: data.byteLength, canSendMore: true }
  }
  conn.sendClose = async (options) => {
    flush()
    await sendClose(options)
  }
  return true
}

const wrappedUpgraders = new WeakMap<Upgrader, Upgrader>()

/** The upgrader seen by a coalescing transport: installs coalescing on each connection before upgrading it. */
function coalescingUpgrader(upgrader: Upgrader): Upgrader {
  const cached = wrappedUpgraders.get(upgrader)
  if (cached !== undefined) return cached
  const install = (maConn: MultiaddrConnection): void => {
    if (coalesceSocketWrites(maConn) || coalesceWebSocketWrites(maConn)) return
    patchMissed('coalescing', 'a TCP/WebSocket connection has no `sendData` hook or no socket')
  }
  const wrapped = new Proxy(upgrader, {
    get(target, prop) {
      if (prop === 'upgradeInbound' || prop === 'upgradeOutbound') {
        return (maConn: MultiaddrConnection, opts: unknown) => {
          install(maConn)
          return (target[prop] as (m: MultiaddrConnection, o: unknown) => Promise<unknown>).call(target, maConn, opts)
        }
      }
      const value: unknown = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  wrappedUpgraders.set(upgrader, wrapped)
  return wrapped
}

/** Wraps a transport factory (`tcp()`, `webSockets()`) so its connections coalesce their writes per turn. */
export function coalescing<C>(factory: (components: C) => Transport): (components: C) => Transport {
  return (components) => {
    const transport = factory(components)
    const dial = transport.dial.bind(transport)
    const createListener = transport.createListener.bind(transport)
    transport.dial = (ma, options) => dial(ma, { ...options, upgrader: coalescingUpgrader(options.upgrader) })
    transport.createListener = (options) =>
      createListener({ ...options, upgrader: coalescingUpgrader(options.upgrader) })
    return transport
  }
}

/** What the frame batching touches on the encrypted connection a muxer writes to (Noise's message stream). */
interface BatchableConnection {
  send(data: Uint8Array | Uint8ArrayList): boolean
  writeStatus: string
  writableNeedsDrain: boolean
  abort(err: Error): void
  /** Noise's EncryptedMessageStream keeps the transport connection it encrypts here. */
  stream?: { close?: (options?: unknown) => Promise<void> }
}

/**
 * Batches the frames a muxer sends in one event-loop turn into one send on `conn`, so that Noise encrypts (and the
 * far side decrypts and dispatches) one message per turn instead of one per Yamux frame: a small request is a data
 * frame plus a window update each way. Past 64 KiB the batch goes at once, so bulk frames flow as before; the
 * batch is also sent before the transport connection under `conn` closes (the muxer's last frames, GoAway). A batch
 * with a frame that opens or accepts a stream (SYN or ACK) is held one turn more, so that a new stream's request and
 * its client's first bytes, or an accepted stream's protocol answer and its handler's status, leave as one message.
 */
export function batchFrames(maConn: MessageStream): boolean {
  const conn = maConn as MessageStream & BatchableConnection
  if (typeof conn.send !== 'function' || typeof conn.writeStatus !== 'string') return false
  const send = conn.send.bind(conn)
  const pending = new Uint8ArrayList()
  let scheduled = false
  /** The batch holds a frame that opens or accepts a stream; `waited`: it has been held one turn for that. */
  let opens = false
  let waited = false
  const flush = (): boolean => {
    scheduled = false
    opens = false
    waited = false
    if (pending.byteLength === 0) return !conn.writableNeedsDrain
    // small batches as one buffer (dozens of tiny pieces cost more to carry than to copy); large ones, made of
    // bulk frames, as they are, so their bytes are not copied once more
    const batch = pending.byteLength <= COPY_BELOW ? pending.subarray() : new Uint8ArrayList(...pending)
    pending.consume(pending.byteLength)
    // an aborted or closed connection drops what was queued, as libp2p does with its own write buffer
    if (conn.writeStatus !== 'writable') return false
    return send(batch)
  }
  const flushNow = (): void => {
    // the transport flushes what this batch wrote as soon as it is written, not a turn later
    const outer = batchEnd === undefined
    if (outer) batchEnd = []
    try {
      flush()
    } catch (err) {
      conn.abort(err as Error)
    } finally {
      if (outer) {
        const ends = batchEnd ?? []
        batchEnd = undefined
        for (const end of ends) end()
      }
    }
  }
  const flushLater = (): void => {
    if (opens && !waited) {
      // a batch that opens a stream waits one more turn: what its opener writes next (a forward's client bytes,
      // read in that turn's poll phase) and the accepting side's first answer (its handler's status, once its
      // target connect completes) join it, one message instead of two
      waited = true
      setImmediate(flushLater)
      return
    }
    flushNow()
  }
  conn.send = (data) => {
    if (conn.writeStatus !== 'writable') return send(data) // throws as usual
    pending.append(data)
    if (!opens && opensStream(data)) opens = true
    if (pending.byteLength >= FLUSH_BYTES) return flush()
    if (!scheduled) {
      scheduled = true
      setImmediate(flushLater)
    }
    return !conn.writableNeedsDrain
  }
  const under = conn.stream
  if (under !== undefined && typeof under.close === 'function') {
    const close = under.close.bind(under)
    under.close = async (options) => {
      flushNow()
      await close(options)
    }
  }
  return true
}

/** Yamux frame types and flags (`@chainsafe/libp2p-yamux` frame.ts). */
const YAMUX_DATA = 0
const YAMUX_SYN = 1
const YAMUX_ACK = 2

/** True for a Yamux data or window-update frame with SYN or ACK: the first frame of a stream on either side. */
function opensStream(frame: Uint8Array | Uint8ArrayList): boolean {
  if (frame.byteLength < 12) return false
  const at = (i: number): number => (frame instanceof Uint8Array ? frame[i]! : frame.get(i))
  const type = at(1)
  if (type !== YAMUX_DATA && type !== YAMUX_WINDOW_UPDATE) return false
  return (at(3) & (YAMUX_SYN | YAMUX_ACK)) !== 0
}

/** Wraps a stream muxer factory (`yamux()`) so each connection's muxer batches its frames per turn. */
export function batching<C>(factory: (components: C) => StreamMuxerFactory): (components: C) => StreamMuxerFactory {
  return (components) => {
    const muxers = factory(components)
    const create = muxers.createStreamMuxer.bind(muxers)
    muxers.createStreamMuxer = (maConn) => {
      if (!batchFrames(maConn)) patchMissed('batching', 'the encrypted connection has no `send`/`writeStatus`')
      if (!quietNoiseDecoder(maConn)) {
        patchMissed('quietNoiseDecoder', 'the encrypted connection has no Noise decoder with `uint16BEDecode`')
      }
      const muxer = create(maConn)
      if (!holdWindowUpdates(muxer)) patchMissed('holdWindowUpdates', 'the muxer has no `sendFrame`')
      if (!indexStreams(muxer)) patchMissed('indexStreams', 'the muxer has no `streams`/`handleStreamMessage`')
      return muxer
    }
    return muxers
  }
}

/** Yamux frame header fields (`@chainsafe/libp2p-yamux` FrameHeader). */
interface YamuxHeader {
  type: number
  flag: number
  streamID: number
  length: number
}

const YAMUX_WINDOW_UPDATE = 1
const YAMUX_RST = 8
/**
 * Window credit held back per stream until it reaches this many bytes. Must stay at most half of the smallest
 * stream window (Yamux's initial 256 KiB), so that a sender always has window left while credit is held.
 */
export const HOLD_WINDOW_BELOW = 64 * 1024
const PRUNE_ABOVE = 1024

/** Yamux `StreamState.Established`: a stream past SYN/ACK, whose window updates carry no flag. */
const YAMUX_ESTABLISHED = 3

/**
 * An established stream computes no window update before it has received {@link HOLD_WINDOW_BELOW} bytes since its
 * last one. Yamux grows a stream's window (doubling it) on any update made within four round trips of the last, so
 * the first data frames of every new stream each sent a growth of several hundred KiB on their own, a message the
 * far side must decrypt and dispatch, for streams that then carry a few bytes. The sender keeps at least three
 * quarters of the window it was given; a bulk stream grows as before, one update per 64 KiB received.
 */
function holdWindowGrowth(stream: unknown): void {
  const s = stream as {
    state?: number
    recvWindow?: number
    recvWindowCapacity?: number
    sendWindowUpdate?: () => void
  }
  if (typeof s.sendWindowUpdate !== 'function' || typeof s.recvWindow !== 'number') return
  const sendWindowUpdate = s.sendWindowUpdate.bind(s)
  s.sendWindowUpdate = () => {
    if (s.state === YAMUX_ESTABLISHED && s.recvWindow! - s.recvWindowCapacity! < HOLD_WINDOW_BELOW) return
    sendWindowUpdate()
  }
}

/**
 * Sends Yamux window updates only once a stream's credit reaches {@link HOLD_WINDOW_BELOW} bytes, instead of one
 * after every data frame received. @chainsafe/libp2p-yamux has no threshold setting (Go's yamux waits for half a
 * window): a small request or response costs a data frame one way and a 12-byte window update back, each to be
 * encoded, batched, encrypted, decrypted and dispatched to its stream. Held credit is added to the stream's next
 * window update with a flag (SYN, ACK, FIN); a reset drops it. Receivers may grant credit late (the Yamux spec
 * only bounds what a sender may send), and with at most a quarter of the initial window held a sender is never
 * left without window: bulk streams still get an update per 64 KiB read.
 */
export function holdWindowUpdates(muxer: unknown): boolean {
  const m = muxer as {
    sendFrame?: (header: YamuxHeader, data?: unknown) => boolean
    streams?: unknown[]
    _newStream?: (...args: unknown[]) => unknown
  }
  if (typeof m.sendFrame !== 'function') return false
  if (typeof m._newStream === 'function') {
    const newStream = m._newStream.bind(m)
    m._newStream = (...args) => {
      const stream = newStream(...args)
      holdWindowGrowth(stream)
      return stream
    }
  }
  const sendFrame = m.sendFrame.bind(m)
  // made with the first credit held: an idle connection (a relay holds thousands) never needs one
  let held: Map<number, number> | undefined
  const prune = (): void => {
    const open = new Set((m.streams ?? []).map((s) => (s as { streamId?: number }).streamId))
    for (const id of held!.keys()) if (!open.has(id)) held!.delete(id)
  }
  // streams bind `this.sendFrame` when they are created, so they all go through this one
  m.sendFrame = (header, data) => {
    if (header.type !== YAMUX_WINDOW_UPDATE || header.streamID === 0) return sendFrame(header, data)
    const prev = held?.get(header.streamID)
    if (header.flag === 0) {
      const total = (prev ?? 0) + header.length
      if (total < HOLD_WINDOW_BELOW) {
        held ??= new Map()
        held.set(header.streamID, total)
        if (prev === undefined && held.size > PRUNE_ABOVE) prune()
        return true
      }
      if (prev !== undefined) held!.delete(header.streamID)
      return sendFrame(total === header.length ? header : { ...header, length: total }, data)
    }
    if (prev === undefined) return sendFrame(header, data)
    held!.delete(header.streamID)
    if ((header.flag & YAMUX_RST) !== 0) return sendFrame(header, data)
    return sendFrame({ ...header, length: header.length + prev }, data)
  }
  return true
}
