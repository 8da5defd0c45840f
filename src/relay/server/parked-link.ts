/**
 * An idle client connection of the relay, parked: its TCP socket and Noise session keys kept, js-libp2p's objects
 * for it (the Yamux muxer, Noise's message stream and the TCP socket wrapper, ~10 KiB of heap per connection,
 * docs/performance.md "Idle reservations") let go until the client or the relay needs them again.
 *
 * A parked connection stays a js-libp2p `Connection` for everyone else (the connection manager, the circuit relay
 * server, the sweep): a {@link ParkedLink} stands in as its `muxer` and its `maConn`. While parked the link reads
 * the socket itself: it opens each Noise message with the session's keys and nonces, and answers Yamux PING frames
 * (how Warren nodes check their relay) with their ACK; the sweep's own pings go out the same way. Anything else
 * the client sends (a new stream, a GoAway), a stream the relay opens (a circuit's STOP stream) or a graceful close
 * first rebuilds the three objects on the same socket and the same Noise session (the socket wrapper, Noise's
 * message stream with the session's cipher states, the muxer through the node's own muxer factory, so with Warren's
 * patches, going on with the stream ids), then hands them what it had read. The client sees nothing of this.
 *
 * Parking needs js-libp2p's shapes as they are in the versions pinned (@libp2p/tcp 11.0.x, @chainsafe/libp2p-noise
 * 17.0.x, @chainsafe/libp2p-yamux 8.0.x); {@link parkConnection} checks each thing it relies on and leaves the
 * connection as it is when one is missing (test/relay/park.test.ts guards them against the installed packages).
 */
import type { Socket } from 'node:net'
import { type AbortOptions, type Connection, ConnectionClosedError, StreamCloseEvent } from '@libp2p/interface'
import { raceSignal } from 'race-signal'
import { Uint8ArrayList } from 'uint8arraylist'
import { coalesceSocketWrites } from '../../p2p/patches/coalesce.ts'
import { openWith, SessionCipher, type SessionKeys, sealWith, sessionKeys } from '../../p2p/patches/session-cipher.ts'
import {
  ACCEPTED,
  type EncryptedStream,
  type MuxerFactory,
  type ParkableParts,
  parkableParts,
  type SocketWrapperClass,
  type TcpListenerLike,
  type TcpWrapper,
  type YamuxLike,
} from './parkable.ts'
import { handOver, type PendingPing, PING, pingAck, pingFrame, scanFrames } from './yamux-frames.ts'

const TAG = 16
/** The parked link of a socket, for the module's shared socket listeners (no closures per connection). */
const LINK = Symbol('warren.parkedLink')
const EMPTY: readonly never[] = Object.freeze([])

type ParkedSocket = Socket & { [LINK]?: ParkedLink; [ACCEPTED]?: TcpListenerLike }

let parkedNow = 0
let parks = 0
let wakes = 0

/** Connections parked now, parked since the start, and woken (rebuilt) since the start. */
export function parkingCounts(): { parked: number; parks: number; wakes: number } {
  return { parked: parkedNow, parks, wakes }
}

let nextPingId = 0x7000_0000

/** What a connection is rebuilt with when it wakes. */
interface Kinds {
  Wrapper: SocketWrapperClass
  Encrypted: new (stream: TcpWrapper, handshake: EncryptedStream['handshake'], metrics?: unknown) => EncryptedStream
  muxers: MuxerFactory
}

export class ParkedLink {
  /** As `muxer.status` and `maConn.status`: 'open' while parked and usable. */
  status: 'open' | 'closed' | 'aborted' = 'open'
  readonly streams = EMPTY
  readonly protocol: string
  #conn: Connection
  #socket: ParkedSocket
  /** Noise's own session objects, when the keys could not be read out of them ({@link SessionKeys}). */
  #handshake: EncryptedStream['handshake'] | undefined
  /** The session's two keys, sending first, and its next counters: what is kept of Noise's objects when it can be. */
  #keys: Uint8Array | undefined
  #sent = 0
  #received = 0
  #kinds: Kinds
  #nextStreamID: number
  #inactivityTimeout: number
  #metrics: unknown
  #metricPrefix: string | undefined
  #pending: Uint8Array | undefined
  #ping: PendingPing | undefined
  #woken: { muxer: YamuxLike; maConn: TcpWrapper } | undefined
  /** Reading is paused until the socket drains: a client that does not read its ping answers is not read either. */
  #held = false

  constructor(conn: Connection, parts: ParkableParts, kinds: Kinds, session: SessionKeys | undefined) {
    this.#conn = conn
    this.#socket = parts.socket
    if (session === undefined) this.#handshake = parts.encrypted.handshake
    else {
      this.#keys = session.keys
      this.#sent = session.sent
      this.#received = session.received
    }
    this.#kinds = kinds
    this.protocol = parts.muxer.protocol
    this.#nextStreamID = parts.muxer.nextStreamID
    this.#inactivityTimeout = parts.wrapper.inactivityTimeout
    this.#metrics = parts.wrapper.metrics
    this.#metricPrefix = parts.wrapper.metricPrefix
  }

  /** What the link keeps of the Noise session: its two keys and counters, or Noise's own objects. */
  get session(): 'keys' | 'noise' {
    return this.#keys !== undefined ? 'keys' : 'noise'
  }

  /** `muxer.createStream`: wakes the connection and opens the stream on its muxer. */
  async createStream(options?: unknown): Promise<unknown> {
    return await this.wake().muxer.createStream(options)
  }

  /** `muxer.ping`: one Yamux PING round trip, in ms, sent from the parked link. */
  async ping(options?: AbortOptions): Promise<number> {
    if (this.#woken !== undefined) return await this.#woken.muxer.ping(options)
    if (this.status !== 'open') throw new ConnectionClosedError('the parked connection is closed')
    if (this.#ping === undefined) {
      let resolve!: (rtt: number) => void
      let reject!: (err: Error) => void
      const promise = new Promise<number>((res, rej) => {
        resolve = res
        reject = rej
      })
      const ping: PendingPing = { id: nextPingId++ >>> 0, start: performance.now(), resolve, reject, promise }
      const done = (): void => {
        if (this.#ping === ping) this.#ping = undefined
      }
      promise.then(done, done)
      this.#ping = ping
      try {
        this.#send(pingFrame(ping.id))
      } catch (err) {
        this.#ping = undefined
        throw err
      }
    }
    return await raceSignal(this.#ping.promise, options?.signal)
  }

  /** `muxer.close` and `maConn.close`: a graceful close goes through the rebuilt muxer (its GoAway). */
  async close(options?: AbortOptions): Promise<void> {
    if (this.#woken !== undefined) {
      await this.#woken.muxer.close(options)
      return
    }
    if (this.status !== 'open') return
    await this.wake().muxer.close(options)
  }

  /** `muxer.abort` and `maConn.abort`: resets the socket. */
  abort(err: Error): void {
    if (this.#woken !== undefined) {
      this.#woken.muxer.abort(err)
      this.#woken.maConn.abort(err)
      return
    }
    if (this.status !== 'open') return
    this.#socket.resetAndDestroy()
    this.#closed(true, err)
  }

  /**
   * Rebuilds the socket wrapper, Noise's message stream and the muxer on the same socket and session, puts them
   * back on the connection and hands them the bytes read while parked. Returns them; throws when the link closed.
   */
  wake(plaintext?: Uint8Array, rest?: Uint8Array): { muxer: YamuxLike; maConn: TcpWrapper } {
    if (this.#woken !== undefined) return this.#woken
    if (this.status !== 'open') throw new ConnectionClosedError('the parked connection is closed')
    // the woken connection reads and writes with js-libp2p's own back-pressure
    this.release()
    this.#detach()
    this.status = 'closed'
    parkedNow--
    wakes++
    const conn = this.#conn as Connection & { maConn: unknown; muxer: unknown; onIncomingStream: EventListener }
    try {
      const { Wrapper, Encrypted, muxers } = this.#kinds
      const maConn = new Wrapper({
        socket: this.#socket,
        remoteAddr: conn.remoteAddr,
        direction: conn.direction,
        inactivityTimeout: this.#inactivityTimeout,
        metrics: this.#metrics,
        metricPrefix: this.#metricPrefix,
        log: conn.log,
      })
      maConn.timeline = conn.timeline
      coalesceSocketWrites(maConn as never)
      const session =
        this.#handshake ?? new SessionCipher({ keys: this.#keys!, sent: this.#sent, received: this.#received })
      const encrypted = new Encrypted(maConn, session as EncryptedStream['handshake'])
      const muxer = muxers.createStreamMuxer(encrypted)
      muxer.nextStreamID = this.#nextStreamID
      muxer.addEventListener('stream', conn.onIncomingStream)
      maConn.addEventListener('close', (evt: Event) => {
        const e = evt as StreamCloseEvent
        conn.dispatchEvent(new StreamCloseEvent(e.local, e.error))
      })
      conn.maConn = maConn
      conn.muxer = muxer
      this.#woken = { muxer, maConn }
      if (this.#ping !== undefined) handOver(this.#ping, muxer)
      if (plaintext !== undefined && plaintext.byteLength > 0) encrypted.onData(plaintext)
      if (rest !== undefined && rest.byteLength > 0) maConn.onData(rest)
      return this.#woken
    } catch (err) {
      this.#socket.resetAndDestroy()
      conn.dispatchEvent(new StreamCloseEvent(true, err as Error))
      throw err
    }
  }

  /** Takes the socket over from the wrapper's listeners (already removed by {@link parkConnection}). */
  attach(): void {
    const socket = this.#socket
    socket[LINK] = this
    socket.on('data', onParkedData)
    socket.on('error', onParkedError)
    socket.on('close', onParkedClose)
    // no inactivity timer while parked (a Timeout per socket): the sweep's pings find a client that went silent;
    // the wrapper rebuilt on waking sets the timer again
    socket.setTimeout(0)
    parkedNow++
    parks++
  }

  #detach(): void {
    const socket = this.#socket
    socket.removeListener('data', onParkedData)
    socket.removeListener('error', onParkedError)
    socket.removeListener('close', onParkedClose)
    socket.removeListener('drain', onParkedDrain)
    delete socket[LINK]
  }

  #closed(local: boolean, err?: Error): void {
    if (this.status !== 'open') return
    this.#detach()
    this.status = err === undefined ? 'closed' : 'aborted'
    parkedNow--
    this.#ping?.reject(err ?? new ConnectionClosedError('the connection closed'))
    this.#conn.dispatchEvent(new StreamCloseEvent(local, err))
  }

  /** Seals `plaintext` as one Noise message and writes it. */
  #send(plaintext: Uint8Array): void {
    let body: Uint8Array
    if (this.#keys !== undefined) {
      body = sealWith(this.#keys.subarray(0, 32), this.#sent, plaintext)
      this.#sent++
    } else {
      const sealed = this.#handshake!.encrypt(plaintext)
      body = sealed instanceof Uint8Array ? sealed : sealed.subarray()
    }
    const out = Buffer.allocUnsafe(2 + body.byteLength)
    out.writeUInt16BE(body.byteLength, 0)
    out.set(body, 2)
    if (!this.#socket.write(out) && !this.#held) {
      this.#held = true
      this.#socket.pause()
      this.#socket.once('drain', onParkedDrain)
    }
  }

  /** The socket drained (or the link wakes): reading goes on. */
  release(): void {
    if (!this.#held) return
    this.#held = false
    this.#socket.removeListener('drain', onParkedDrain)
    this.#socket.resume()
  }

  onData(chunk: Buffer): void {
    let buf: Uint8Array = chunk
    if (this.#pending !== undefined) {
      buf = Buffer.concat([this.#pending, chunk])
      this.#pending = undefined
    }
    let at = 0
    while (this.status === 'open' && buf.byteLength - at >= 2) {
      const length = (buf[at]! << 8) | buf[at + 1]!
      if (buf.byteLength - at - 2 < length) break
      const message = buf.subarray(at + 2, at + 2 + length)
      at += 2 + length
      if (length < TAG) {
        this.abort(new Error('Invalid chunk'))
        return
      }
      let plaintext: Uint8Array
      try {
        const dst = message.subarray(0, length - TAG)
        if (this.#keys !== undefined) {
          plaintext = openWith(this.#keys.subarray(32, 64), this.#received, message, dst)
          this.#received++
        } else {
          const opened = this.#handshake!.decrypt(message, dst)
          plaintext = opened instanceof Uint8Array ? opened : opened.subarray()
        }
      } catch (err) {
        this.abort(err as Error)
        return
      }
      if (!this.#onlyPings(plaintext)) {
        try {
          this.wake(plaintext, buf.subarray(at))
        } catch {
          // the wake reset the socket and closed the connection
        }
        return
      }
    }
    if (this.status === 'open' && at < buf.byteLength) this.#pending = Uint8Array.prototype.slice.call(buf, at)
  }

  /** Answers the message's frames when all are PINGs; false (nothing done) when any is something else. */
  #onlyPings(plaintext: Uint8Array): boolean {
    const frames = scanFrames(plaintext)
    if (frames === undefined) return false
    for (const f of frames) if (f.type !== PING) return false
    const acks: Uint8Array[] = []
    for (const f of frames) {
      if (f.syn) acks.push(pingAck(f.value))
      else if (f.ack && this.#ping !== undefined && this.#ping.id === f.value) {
        this.#ping.resolve(performance.now() - this.#ping.start)
      }
    }
    if (acks.length > 0) {
      try {
        this.#send(acks.length === 1 ? acks[0]! : new Uint8ArrayList(...acks).subarray())
      } catch (err) {
        this.abort(err as Error)
      }
    }
    return true
  }

  onError(err: Error): void {
    this.#socket.destroy()
    this.#closed(false, err)
  }

  onClose(hadError: boolean): void {
    this.#closed(false, hadError ? new Error('TCP transmission error') : undefined)
  }
}

/** What the TCP listener's own `close` listener did: forget the socket. It stays through a wake. */
function onAcceptedClose(this: ParkedSocket): void {
  this[ACCEPTED]?.sockets.delete(this)
  delete this[ACCEPTED]
}

function onParkedData(this: ParkedSocket, chunk: Buffer): void {
  this[LINK]?.onData(chunk)
}
function onParkedDrain(this: ParkedSocket): void {
  this[LINK]?.release()
}
function onParkedError(this: ParkedSocket, err: Error): void {
  this[LINK]?.onError(err)
}
function onParkedClose(this: ParkedSocket, hadError: boolean): void {
  this[LINK]?.onClose(hadError)
}

/**
 * Parks `conn` when it is an idle client connection the relay can park: TCP, Noise and Yamux as pinned, no stream,
 * nothing buffered or in flight in any layer. Returns whether it did.
 */
export function parkConnection(
  conn: Connection,
  muxers: (protocol: string) => MuxerFactory | undefined,
  tcpListeners: Iterable<unknown>,
  /** The node's Noise seals with Warren's cipher (src/p2p/patches/noise-crypto.ts): keep only the session's keys. */
  ownCipher = false,
): boolean {
  const parts = parkableParts(conn, tcpListeners)
  if (parts === undefined) return false
  const factory = muxers(parts.muxer.protocol)
  if (factory === undefined) return false
  const kinds: Kinds = {
    Wrapper: parts.wrapper.constructor as SocketWrapperClass,
    Encrypted: parts.encrypted.constructor as Kinds['Encrypted'],
    muxers: factory,
  }
  for (const [event, fn] of parts.wrapperListeners) parts.socket.removeListener(event, fn)
  const socket = parts.socket as ParkedSocket
  if (parts.accepted.onClose !== undefined) {
    socket.removeListener('close', parts.accepted.onClose)
    socket[ACCEPTED] = parts.accepted.listener
    socket.on('close', onAcceptedClose)
  }
  // reading the keys counts a message each way on Noise's objects: from here on only the keys are used
  const session = ownCipher ? sessionKeys(parts.encrypted.handshake) : undefined
  if (ownCipher && session === undefined) {
    // the cipher was not Warren's after all and sealed a message nobody sent: the session is out of step
    conn.abort(new Error('could not read the Noise session keys of an idle connection'))
    return false
  }
  const link = new ParkedLink(conn, parts, kinds, session)
  link.attach()
  const c = conn as unknown as { maConn: unknown; muxer: unknown }
  c.maConn = link
  c.muxer = link
  return true
}

/** The link of a parked connection, or undefined. */
export function parkedLink(conn: Connection): ParkedLink | undefined {
  const muxer = (conn as unknown as { muxer?: unknown }).muxer
  return muxer instanceof ParkedLink ? muxer : undefined
}
