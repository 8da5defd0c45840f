/**
 * STUN Binding over TCP (RFC 5389 §7.2.2): the relay answers on the same port number as its UDP responder, so a node
 * learns the public TCP mapping of a local port it chose. That is what a TCP direct path needs: both nodes then
 * connect from that very port to each other's mapping at the same moment (a TCP simultaneous open, see
 * ../traversal/tcp-punch.ts).
 *
 * Messages on a TCP connection are framed by STUN's own length field. The responder answers every Binding request on
 * the connection, and closes connections that send anything else, exceed {@link MAX_STUN_TCP_MESSAGE}, or stay idle
 * for {@link STUN_TCP_IDLE_MS} (the client closes its end once its direct path is settled). A client that does not
 * read its answers is read no further until it does.
 *
 * @example
 * ```ts
 * const tcp = await startStunTcpResponder({ host: '0.0.0.0', port: 3478 })
 * await tcp.close()
 * ```
 *
 * @packageDocumentation
 */
import { createServer, type Socket } from 'node:net'
import { WarrenError } from '../errors.ts'
import { answerStun, STUN_HEADER_LENGTH, type StunAddress } from './codec.ts'

/** Largest STUN message accepted over TCP (a Binding request is 20–28 bytes). */
export const MAX_STUN_TCP_MESSAGE = 2048
/** A connection that sends nothing for this long is closed. */
export const STUN_TCP_IDLE_MS = 15_000

export interface StunTcpResponder {
  readonly address: StunAddress
  /** Binding requests answered over TCP. */
  readonly answered: number
  close(): Promise<void>
}

/**
 * Splits the STUN messages out of a TCP byte stream: returns the complete messages and keeps the rest in `state`.
 * Throws a RangeError on a length past {@link MAX_STUN_TCP_MESSAGE} or bytes that cannot start a STUN message.
 */
export function takeStunFrames(state: { buffered: Buffer }, chunk: Buffer): Buffer[] {
  state.buffered = state.buffered.length === 0 ? chunk : Buffer.concat([state.buffered, chunk])
  const out: Buffer[] = []
  while (state.buffered.length >= STUN_HEADER_LENGTH) {
    if ((state.buffered[0]! & 0xc0) !== 0) throw new RangeError('not a STUN message')
    const total = STUN_HEADER_LENGTH + state.buffered.readUInt16BE(2)
    if (total > MAX_STUN_TCP_MESSAGE) throw new RangeError(`STUN message of ${total} bytes is too long`)
    if (state.buffered.length < total) break
    out.push(state.buffered.subarray(0, total))
    state.buffered = state.buffered.subarray(total)
  }
  if (state.buffered.length > MAX_STUN_TCP_MESSAGE) throw new RangeError('too much unframed data')
  return out
}

/** Starts the TCP half of a STUN responder. Rejects with ERR_LISTEN_FAILED if the port cannot be bound. */
export async function startStunTcpResponder(options: { host?: string; port: number }): Promise<StunTcpResponder> {
  const host = options.host ?? '0.0.0.0'
  const sockets = new Set<Socket>()
  let answered = 0
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.setTimeout(STUN_TCP_IDLE_MS, () => socket.destroy())
    socket.on('error', () => undefined)
    socket.once('close', () => sockets.delete(socket))
    const from = { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }
    const state = { buffered: Buffer.alloc(0) }
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of takeStunFrames(state, chunk)) {
          const reply = answerStun(frame, from)
          if (reply === undefined) throw new RangeError('not a Binding request')
          answered++
          // a client that does not read its answers is not read either: they cannot pile up here
          if (!socket.write(reply) && !socket.isPaused()) {
            socket.pause()
            socket.once('drain', () => socket.resume())
          }
        }
      } catch {
        socket.destroy()
      }
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => {
      reject(
        new WarrenError(
          'ERR_LISTEN_FAILED',
          `the STUN responder could not bind TCP ${host}:${options.port}: ${err.message}`,
          {
            hint: 'Pick another --stun-port or stop the process that holds this TCP port.',
            cause: err,
          },
        ),
      )
    })
    server.listen(options.port, host, () => resolve())
  })
  server.on('error', () => undefined)
  const bound = server.address() as { address: string; port: number }
  return {
    address: { host: bound.address, port: bound.port },
    get answered() {
      return answered
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
