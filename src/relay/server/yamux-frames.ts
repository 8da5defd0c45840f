/**
 * The few Yamux frames a parked connection (parked-link.ts) reads and writes itself: PINGs and their ACKs. A frame
 * is a 12-byte header (version 0, type, 16-bit flags, 32-bit stream id, 32-bit length) and, for data frames only,
 * `length` bytes; a PING's `length` is its opaque value (Yamux spec, hashicorp/yamux). And a ping still out when the
 * connection wakes, handed to the rebuilt muxer.
 */
import type { YamuxLike } from './parkable.ts'

export const DATA = 0
export const WINDOW_UPDATE = 1
export const PING = 2
export const GO_AWAY = 3
const SYN = 1
const ACK = 2
const HEADER = 12

export interface FrameHead {
  type: number
  syn: boolean
  ack: boolean
  streamID: number
  /** A PING's opaque value, a data frame's length. */
  value: number
}

/** The frames of one decrypted message, or undefined when it does not hold whole frames of version 0. */
export function scanFrames(plaintext: Uint8Array): FrameHead[] | undefined {
  const frames: FrameHead[] = []
  let at = 0
  while (at < plaintext.byteLength) {
    if (plaintext.byteLength - at < HEADER || plaintext[at] !== 0) return undefined
    const view = new DataView(plaintext.buffer, plaintext.byteOffset + at, HEADER)
    const type = view.getUint8(1)
    const flags = view.getUint16(2)
    const head: FrameHead = {
      type,
      syn: (flags & SYN) !== 0,
      ack: (flags & ACK) !== 0,
      streamID: view.getUint32(4),
      value: view.getUint32(8),
    }
    frames.push(head)
    at += HEADER + (type === DATA ? head.value : 0)
  }
  return at === plaintext.byteLength ? frames : undefined
}

function pingWith(flags: number, value: number): Uint8Array {
  const frame = new Uint8Array(HEADER)
  const view = new DataView(frame.buffer)
  view.setUint8(1, PING)
  view.setUint16(2, flags)
  view.setUint32(8, value >>> 0)
  return frame
}

/** A PING asking for an answer (SYN) with `value`. */
export function pingFrame(value: number): Uint8Array {
  return pingWith(SYN, value)
}

/** The answer (ACK) to a PING with `value`. */
export function pingAck(value: number): Uint8Array {
  return pingWith(ACK, value)
}

/** A ping the parked link sent and waits for: its id, its start (`performance.now()`) and its settlers. */
export interface PendingPing {
  id: number
  start: number
  resolve: (rtt: number) => void
  reject: (err: Error) => void
  promise: Promise<number>
}

/**
 * A ping of the parked link still unanswered when the connection wakes: the rebuilt muxer takes it as its own active
 * ping (Yamux's shape: a promise with its resolvers, the id and the start), so that the node's answer settles it
 * there instead of being an unrequested ping, which Yamux answers by aborting the connection. The muxer lets go of
 * it once it is settled, as after a ping of its own.
 */
export function handOver(ping: PendingPing, muxer: YamuxLike): void {
  let resolve!: (rtt: number) => void
  let reject!: (err: Error) => void
  const promise = new Promise<number>((res, rej) => {
    resolve = res
    reject = rej
  })
  const active = { promise, resolve, reject, id: ping.id, start: Date.now() - (performance.now() - ping.start) }
  muxer.activePing = active
  const done = (): void => {
    if (muxer.activePing === active) muxer.activePing = undefined
  }
  promise.then(
    (rtt) => {
      done()
      ping.resolve(rtt)
    },
    (err: Error) => {
      done()
      ping.reject(err)
    },
  )
}
