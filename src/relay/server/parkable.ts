/**
 * Whether a relay connection can be parked (parked-link.ts), and the parts of it parking takes apart: the js-libp2p
 * shapes it relies on, each checked on the connection itself, so that a connection of another kind (WebSocket, a
 * muxer other than Yamux) or of another version of these packages is left as it is.
 */
import { Socket } from 'node:net'
import type { Connection } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** The events on which @libp2p/tcp's socket wrapper listens to its socket (one listener each). */
export const WRAPPER_EVENTS = ['data', 'error', 'timeout', 'end', 'close', 'drain'] as const

interface Buffered {
  byteLength: number
}

/** What parking reads of @libp2p/utils' AbstractMessageStream, which the socket wrapper and Noise's stream are. */
interface MessageStreamState extends EventTarget {
  status: string
  readStatus: string
  writeStatus: string
  sendingData: boolean
  readBuffer: Buffered
  writeBuffer: Buffered
  onData(data: Uint8Array): void
}

/** @libp2p/tcp's socket wrapper (TCPSocketMultiaddrConnection) as parking uses it. */
export interface TcpWrapper extends MessageStreamState {
  socket: Socket
  inactivityTimeout: number
  metrics?: unknown
  metricPrefix?: string
  timeline: unknown
  abort(err: Error): void
}

export type SocketWrapperClass = new (init: {
  socket: Socket
  remoteAddr: unknown
  direction: string
  inactivityTimeout: number
  metrics: unknown
  metricPrefix: string | undefined
  log: unknown
}) => TcpWrapper

/** Noise's message stream (EncryptedMessageStream) as parking uses it. */
export interface EncryptedStream extends MessageStreamState {
  stream: TcpWrapper
  decoder: { buffer: Buffered }
  handshake: {
    encrypt(plaintext: Uint8Array): Uint8Array | Uint8ArrayList
    decrypt(ciphertext: Uint8Array, dst?: Uint8Array): Uint8Array | Uint8ArrayList
  }
}

/** @chainsafe/libp2p-yamux's muxer as parking uses it. */
export interface YamuxLike extends EventTarget {
  protocol: string
  status: string
  maConn: unknown
  streams: unknown[]
  earlyStreams: unknown[]
  nextStreamID: number
  activePing?: unknown
  localGoAway?: unknown
  remoteGoAway?: unknown
  decoder: { buffer: Buffered }
  createStream(options?: unknown): Promise<unknown>
  ping(options?: unknown): Promise<number>
  close(options?: unknown): Promise<void>
  abort(err: Error): void
}

export interface MuxerFactory {
  createStreamMuxer(stream: EncryptedStream): YamuxLike
}

/** @libp2p/tcp's listener as parking uses it: the set of its open sockets, and its settings. */
export interface TcpListenerLike {
  sockets: Set<Socket>
  context?: { closeServerOnMaxConnections?: unknown }
}

export interface ParkableParts {
  socket: Socket
  wrapper: TcpWrapper
  encrypted: EncryptedStream
  muxer: YamuxLike
  /** The wrapper's own listeners on the socket, to be removed when parking. */
  wrapperListeners: [string, (...args: unknown[]) => void][]
  /**
   * The TCP listener that accepted the socket, and its `close` listener on the socket (it deletes the socket from
   * the listener's set). That closure keeps the socket wrapper reachable (it shares a context with it), so parking
   * swaps it for one of its own that does the same.
   */
  accepted: { listener: TcpListenerLike; onClose: ((...args: unknown[]) => void) | undefined }
}

/** Set on a socket once parked: the TCP listener that accepted it (parked-link.ts forgets it there on close). */
export const ACCEPTED = Symbol('warren.acceptedBy')

/** The source text by which the TCP listener's `close` listener on an accepted socket is known. */
const LISTENER_CLOSE = 'this.sockets.delete(socket)'

/**
 * The TCP listener among `listeners` that accepted `socket`, and its one `close` listener on it (none when the
 * socket was parked before, and so swapped already); undefined when
 * there is none, or when the listener pauses and resumes itself by its connection count (its `close` listener then
 * does more than forget the socket).
 */
export function acceptedBy(socket: Socket, listeners: Iterable<unknown>): ParkableParts['accepted'] | undefined {
  // parked before: the listener's own close listener was swapped then
  const known = (socket as Socket & { [ACCEPTED]?: TcpListenerLike })[ACCEPTED]
  if (known !== undefined) return { listener: known, onClose: undefined }
  let listener: TcpListenerLike | undefined
  for (const l of listeners) {
    const sockets = (l as Partial<TcpListenerLike>).sockets
    if (sockets instanceof Set && sockets.has(socket)) listener = l as TcpListenerLike
  }
  if (listener === undefined || listener.context?.closeServerOnMaxConnections != null) return undefined
  let onClose: ((...args: unknown[]) => void) | undefined
  for (const raw of socket.rawListeners('close') as ((...args: unknown[]) => void)[]) {
    const fn = (raw as { listener?: (...args: unknown[]) => void }).listener ?? raw
    if (!Function.prototype.toString.call(fn).includes(LISTENER_CLOSE)) continue
    if (onClose !== undefined) return undefined
    onClose = raw
  }
  return onClose === undefined ? undefined : { listener, onClose }
}

const sources = new WeakMap<object, string>()

function sourceOf(fn: object): string {
  let text = sources.get(fn)
  if (text === undefined) {
    text = Function.prototype.toString.call(fn)
    sources.set(fn, text)
  }
  return text
}

/**
 * The wrapper's listeners on `socket`: for each of {@link WRAPPER_EVENTS}, the one listener whose source lies in
 * the wrapper's class (its constructor's arrow functions). Undefined unless there is exactly one per event.
 */
export function wrapperListeners(
  socket: Socket,
  wrapperClass: object,
): [string, (...args: unknown[]) => void][] | undefined {
  const classText = sourceOf(wrapperClass)
  const found: [string, (...args: unknown[]) => void][] = []
  for (const event of WRAPPER_EVENTS) {
    let mine: ((...args: unknown[]) => void) | undefined
    for (const raw of socket.rawListeners(event) as ((...args: unknown[]) => void)[]) {
      const fn = (raw as { listener?: (...args: unknown[]) => void }).listener ?? raw
      const text = Function.prototype.toString.call(fn)
      if (text.length < 24 || !classText.includes(text)) continue
      if (mine !== undefined) return undefined
      mine = raw
    }
    if (mine === undefined) return undefined
    found.push([event, mine])
  }
  return found
}

function idle(s: MessageStreamState): boolean {
  return (
    s.status === 'open' &&
    s.readStatus === 'readable' &&
    s.writeStatus === 'writable' &&
    !s.sendingData &&
    s.readBuffer?.byteLength === 0 &&
    s.writeBuffer?.byteLength === 0
  )
}

/**
 * The parts of `conn` when it can be parked now, else undefined. `tcpListeners`: the node's transport listeners
 * (libp2p's `transportManager.getListeners()`).
 */
export function parkableParts(conn: Connection, tcpListeners: Iterable<unknown>): ParkableParts | undefined {
  if (conn.status !== 'open' || conn.limits !== undefined) return undefined
  const c = conn as unknown as { muxer?: Partial<YamuxLike>; maConn?: Partial<TcpWrapper> }
  const muxer = c.muxer
  const wrapper = c.maConn
  if (muxer === undefined || wrapper === undefined) return undefined
  if (
    muxer.protocol !== '/yamux/1.0.0' ||
    muxer.status !== 'open' ||
    muxer.streams?.length !== 0 ||
    muxer.earlyStreams?.length !== 0 ||
    typeof muxer.nextStreamID !== 'number' ||
    muxer.activePing !== undefined ||
    muxer.localGoAway !== undefined ||
    muxer.remoteGoAway !== undefined ||
    muxer.decoder?.buffer?.byteLength !== 0
  ) {
    return undefined
  }
  const encrypted = muxer.maConn as Partial<EncryptedStream> | undefined
  if (
    encrypted === undefined ||
    encrypted.stream !== wrapper ||
    typeof encrypted.handshake?.encrypt !== 'function' ||
    typeof encrypted.handshake.decrypt !== 'function' ||
    encrypted.decoder?.buffer?.byteLength !== 0 ||
    !idle(encrypted as EncryptedStream)
  ) {
    return undefined
  }
  const socket = wrapper.socket
  if (
    !(socket instanceof Socket) ||
    socket.destroyed ||
    !socket.readable ||
    !socket.writable ||
    socket.isPaused() ||
    socket.writableLength !== 0 ||
    typeof wrapper.inactivityTimeout !== 'number' ||
    !idle(wrapper as TcpWrapper)
  ) {
    return undefined
  }
  const listeners = wrapperListeners(socket, wrapper.constructor)
  if (listeners === undefined) return undefined
  const accepted = acceptedBy(socket, tcpListeners)
  if (accepted === undefined) return undefined
  return {
    socket,
    wrapper: wrapper as TcpWrapper,
    encrypted: encrypted as EncryptedStream,
    muxer: muxer as YamuxLike,
    wrapperListeners: listeners,
    accepted,
  }
}
