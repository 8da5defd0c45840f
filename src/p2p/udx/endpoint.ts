/**
 * One udx-native UDP socket that carries everything of a direct path: STUN, punch probes and UDX streams. Streams are
 * opened with a two-message handshake in plain datagrams (UDX itself has none): the dialer sends OPEN with its stream id,
 * retransmitting; the listener answers ACCEPT with its own stream id, and both connect their UDX stream. The handshake is
 * not authenticated; the libp2p upgrader (Noise) authenticates the peer on top of the stream, as for TCP.
 *
 * @packageDocumentation
 */
import { randomInt } from 'node:crypto'
import UDX, { type UDXSocket, type UDXStream } from 'udx-native'
import { WarrenError } from '../../errors.ts'
import { type Endpoint, fromUdx, type PacketSocket } from './packet-socket.ts'

const MAGIC = [0x57, 0x52, 0x4e, 0x43] // 'WRNC'
const VERSION = 1
const OPEN = 1
const ACCEPT = 2
const LENGTH = 16
/** Most streams (inbound and outbound) one endpoint carries; further OPENs are ignored. */
const MAX_STREAMS = 1024

let shared: UDX | undefined
const usedIds = new Set<number>()
/** Told of every UDX stream any endpoint of this process opens or accepts ({@link onAnyUdxStream}). */
const streamWatchers = new Set<() => void>()

/** Calls `fn` whenever an endpoint of this process opens or accepts a stream (path-watch.ts wakes on it); returns the unsubscribe. */
export function onAnyUdxStream(fn: () => void): () => void {
  streamWatchers.add(fn)
  return () => {
    streamWatchers.delete(fn)
  }
}

/** The process-wide UDX instance (stream ids are unique per instance). */
export function udxInstance(): UDX {
  shared ??= new UDX()
  return shared
}

function newStreamId(): number {
  for (;;) {
    const id = randomInt(1, 0xffffffff)
    if (!usedIds.has(id)) {
      usedIds.add(id)
      return id
    }
  }
}

function encode(kind: number, dialerId: number, listenerId: number): Uint8Array {
  const out = new Uint8Array(LENGTH)
  const view = new DataView(out.buffer)
  out.set(MAGIC, 0)
  out[4] = VERSION
  out[5] = kind
  view.setUint32(8, dialerId)
  view.setUint32(12, listenerId)
  return out
}

function decode(data: Uint8Array): { kind: number; dialerId: number; listenerId: number } | undefined {
  if (data.length !== LENGTH || data[4] !== VERSION) return undefined
  for (let i = 0; i < 4; i++) if (data[i] !== MAGIC[i]) return undefined
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  return { kind: data[5]!, dialerId: view.getUint32(8), listenerId: view.getUint32(12) }
}

export interface UdxEndpointOptions {
  host?: string
  port?: number
  /** Called for each inbound stream after the handshake; without it inbound OPENs are ignored. */
  onInbound?: (stream: UDXStream, from: Endpoint) => void
}

export interface OpenOptions {
  signal?: AbortSignal
  /** Give up after this long (default 5000 ms). */
  timeoutMs?: number
}

/** A bound UDX socket with the stream-open handshake. */
export class UdxEndpoint {
  readonly socket: UDXSocket
  /** The same socket as a {@link PacketSocket}, for STUN and punching. */
  readonly packets: PacketSocket
  onInbound: ((stream: UDXStream, from: Endpoint) => void) | undefined
  readonly #accepted = new Map<string, UDXStream>()
  readonly #opening = new Map<number, (listenerId: number, from: Endpoint) => void>()
  readonly #streams = new Set<UDXStream>()

  constructor(options: UdxEndpointOptions = {}) {
    this.socket = udxInstance().createSocket()
    try {
      this.socket.bind(options.port ?? 0, options.host ?? '0.0.0.0')
    } catch (err) {
      throw new WarrenError(
        'ERR_LISTEN_FAILED',
        `could not bind UDP ${options.host ?? '0.0.0.0'}:${options.port ?? 0}: ${(err as Error).message}`,
        { hint: 'Pick another UDP port for the direct-path socket, or 0 for any free port.', cause: err },
      )
    }
    this.packets = fromUdx(this.socket)
    this.onInbound = options.onInbound
    this.packets.onMessage((data, from) => this.#onDatagram(data, from))
  }

  /** The streams open on this socket (inbound and outbound, connected or still opening). */
  streams(): ReadonlySet<UDXStream> {
    return this.#streams
  }

  /** Where the socket is bound. */
  address(): Endpoint {
    return this.packets.local()
  }

  #track(stream: UDXStream): UDXStream {
    this.#streams.add(stream)
    stream.once('close', () => {
      this.#streams.delete(stream)
      usedIds.delete(stream.id)
      for (const [k, s] of this.#accepted) if (s === stream) this.#accepted.delete(k)
    })
    for (const fn of streamWatchers) fn()
    return stream
  }

  #onDatagram(data: Uint8Array, from: Endpoint): void {
    const msg = decode(data)
    if (msg === undefined) return
    if (msg.kind === ACCEPT) {
      this.#opening.get(msg.dialerId)?.(msg.listenerId, from)
      return
    }
    if (msg.kind !== OPEN || this.onInbound === undefined || this.socket.closing) return
    const key = `${from.host}:${from.port}/${msg.dialerId}`
    const known = this.#accepted.get(key)
    if (known !== undefined) {
      this.packets.send(encode(ACCEPT, msg.dialerId, known.id), from)
      return
    }
    if (this.#streams.size >= MAX_STREAMS) return
    const stream = this.#track(udxInstance().createStream(newStreamId()))
    stream.connect(this.socket, msg.dialerId, from.port, from.host)
    this.#accepted.set(key, stream)
    this.packets.send(encode(ACCEPT, msg.dialerId, stream.id), from)
    this.onInbound(stream, from)
  }

  /** Opens a UDX stream to a peer endpoint that listens (its NAT must already let our datagrams in). */
  open(to: Endpoint, options: OpenOptions = {}): Promise<UDXStream> {
    const timeoutMs = options.timeoutMs ?? 5000
    const id = newStreamId()
    const stream = this.#track(udxInstance().createStream(id))
    const packet = encode(OPEN, id, 0)
    return new Promise((resolve, reject) => {
      let rto = 100
      let timer: NodeJS.Timeout | undefined
      const done = (err?: Error): void => {
        clearTimeout(timer)
        clearTimeout(deadline)
        this.#opening.delete(id)
        options.signal?.removeEventListener('abort', onAbort)
        if (err === undefined) {
          resolve(stream)
          return
        }
        stream.destroy()
        reject(err)
      }
      const onAbort = (): void => done(options.signal?.reason ?? new Error('aborted'))
      this.#opening.set(id, (listenerId, from) => {
        if (from.host !== to.host || from.port !== to.port) return
        stream.connect(this.socket, listenerId, to.port, to.host)
        done()
      })
      const deadline = setTimeout(
        () =>
          done(
            new WarrenError('ERR_TIMEOUT', `no UDX answer from ${to.host}:${to.port} within ${timeoutMs} ms`, {
              hint: 'The peer may not listen on UDP there, or a NAT drops the datagrams; the relay path stays usable.',
              details: { to, timeoutMs },
            }),
          ),
        timeoutMs,
      )
      const send = (): void => {
        this.packets.send(packet, to)
        timer = setTimeout(send, rto)
        rto = Math.min(rto * 2, 1000)
      }
      if (options.signal?.aborted === true) onAbort()
      else {
        options.signal?.addEventListener('abort', onAbort)
        send()
      }
    })
  }

  /** Destroys every stream and closes the socket. */
  async close(): Promise<void> {
    for (const s of this.#streams) s.destroy()
    if (!this.socket.closing) await this.socket.close()
  }
}
