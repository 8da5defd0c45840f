/**
 * One small interface over "a UDP socket": Node's `dgram.Socket` and udx-native's socket both fit, so STUN, punch
 * probes and (for udx) the streams themselves all run on the same socket, which is what keeps NAT mappings valid.
 *
 * @packageDocumentation
 */
import type { Socket } from 'node:dgram'
import type { UDXSocket } from 'udx-native'

export interface Endpoint {
  host: string
  port: number
}

export interface PacketSocket {
  /** Sends one datagram; errors are swallowed (UDP is lossy anyway, callers retransmit). */
  send(data: Uint8Array, to: Endpoint): void
  /** Adds a listener for every datagram the socket hands to JS; returns a function that removes it. */
  onMessage(listener: (data: Uint8Array, from: Endpoint) => void): () => void
  /** The local bound address. */
  local(): Endpoint
}

/** Wraps a bound `dgram` socket. */
export function fromDgram(socket: Socket): PacketSocket {
  return {
    send: (data, to) => {
      try {
        socket.send(data, to.port, to.host)
      } catch {
        // closed socket: nothing to do
      }
    },
    onMessage: (listener) => {
      const fn = (msg: Buffer, rinfo: { address: string; port: number }): void =>
        listener(msg, { host: rinfo.address, port: rinfo.port })
      socket.on('message', fn)
      return () => socket.off('message', fn)
    },
    local: () => {
      const a = socket.address()
      return { host: a.address, port: a.port }
    },
  }
}

/** Wraps a bound udx-native socket; only datagrams that are not UDX stream packets reach `onMessage`. */
export function fromUdx(socket: UDXSocket): PacketSocket {
  return {
    send: (data, to) => {
      if (socket.closing) return
      try {
        socket.trySend(data, to.port, to.host)
      } catch {
        // closed socket: nothing to do
      }
    },
    onMessage: (listener) => {
      const fn = (msg: Buffer, from: { host: string; port: number }): void =>
        listener(msg, { host: from.host, port: from.port })
      socket.on('message', fn)
      return () => socket.off('message', fn)
    },
    local: () => {
      const a = socket.address()
      return { host: a.host, port: a.port }
    },
  }
}
