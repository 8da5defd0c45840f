/**
 * The part of udx-native's API Warren uses (the package ships no types).
 */
declare module 'udx-native' {
  import type { Duplex } from 'node:stream'

  interface UdxAddress {
    host: string
    family: number
    port: number
  }

  class UDXSocket {
    readonly bound: boolean
    readonly closing: boolean
    readonly streams: Set<UDXStream>
    readonly bytesTransmitted: number
    readonly bytesReceived: number
    readonly packetsDroppedByKernel: number
    address(): UdxAddress
    bind(port?: number, host?: string): void
    close(): Promise<void>
    send(buffer: Uint8Array, port: number, host?: string, ttl?: number): Promise<boolean>
    trySend(buffer: Uint8Array, port: number, host?: string, ttl?: number): void
    setRecvBufferSize(size: number): number
    setSendBufferSize(size: number): number
    on(event: 'message', listener: (msg: Buffer, from: UdxAddress) => void): this
    on(event: 'close' | 'idle' | 'busy' | 'listening', listener: () => void): this
    off(event: 'message', listener: (msg: Buffer, from: UdxAddress) => void): this
    off(event: string, listener: (...args: never[]) => void): this
  }

  interface UdxStreamOptions {
    firewall?: (socket: UDXSocket, port: number, host: string) => boolean
    framed?: boolean
    seq?: number
  }

  /** A streamx Duplex; enough of it is shaped like Node's Duplex for Warren's use. */
  class UDXStream extends Duplex {
    readonly id: number
    readonly remoteId: number
    readonly remoteHost: string | null
    readonly remotePort: number
    readonly connected: boolean
    readonly rtt: number
    readonly mtu: number
    readonly bytesTransmitted: number
    readonly bytesReceived: number
    /** Every packet the stream received, heartbeats and acks included. */
    readonly packetsReceived: number
    /** True from the moment destroy() is called (streamx; `destroyed` follows once the native side closed). */
    readonly destroying: boolean
    connect(socket: UDXSocket, remoteId: number, port: number, host?: string): void
    setKeepalive(timeoutMs: number): void
    flush(): Promise<boolean>
  }

  class UDX {
    createSocket(opts?: { ipv6Only?: boolean; reuseAddress?: boolean }): UDXSocket
    createStream(id: number, opts?: UdxStreamOptions): UDXStream
  }

  export default UDX
  export type { UDXSocket, UDXStream, UdxAddress }
}
