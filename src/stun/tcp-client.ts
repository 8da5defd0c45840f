/**
 * STUN Binding over TCP from a chosen local port: the mapping a NAT gives that port is the one a TCP direct path from
 * it will get, as long as the NAT maps endpoint-independently (port-preserving `masquerade`, most home routers).
 * The connection is left open and handed back, so that the port stays bound (and the mapping in use) until the
 * direct path is settled; the caller closes it.
 *
 * @example
 * ```ts
 * const first = await tcpStunBinding({ host: '198.18.0.1', port: 3478 })             // the kernel picks the port
 * const second = await tcpStunBinding(otherRelay, { localPort: first.localPort })     // same port, other server
 * first.socket.destroy(); second.socket.destroy()
 * ```
 *
 * @packageDocumentation
 */
import { connect, isIPv6, type Socket } from 'node:net'
import { WarrenError } from '../errors.ts'
import type { Endpoint } from '../p2p/udx/packet-socket.ts'
import { bindingRequest, decodeStun, encodeStun, mappedAddress, STUN_BINDING_SUCCESS } from './codec.ts'
import { takeStunFrames } from './tcp-server.ts'

export interface TcpStunResult {
  mapped: Endpoint
  /** The local port the connection is bound to (pass it as `localPort` to reuse it). */
  localPort: number
  rttMs: number
  /** Still open; destroy it when done. */
  socket: Socket
}

/**
 * Connects to `server` (from `localPort` when given; the bind sets SO_REUSEADDR, so several connections may share
 * the port as long as none listens) and asks for the mapped address. Rejects with ERR_TIMEOUT, ERR_NO_DIRECT_PATH (no
 * connection) or ERR_PROTOCOL.
 */
export function tcpStunBinding(
  server: Endpoint,
  opts: { localPort?: number; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<TcpStunResult> {
  const timeoutMs = opts.timeoutMs ?? 2000
  const started = performance.now()
  const request = bindingRequest()
  const socket = connect({
    host: server.host,
    port: server.port,
    localAddress: isIPv6(server.host) ? '::' : '0.0.0.0',
    localPort: opts.localPort ?? 0,
  })
  socket.setNoDelay(true)
  return new Promise<TcpStunResult>((resolve, reject) => {
    const state = { buffered: Buffer.alloc(0) }
    const fail = (err: Error): void => {
      cleanup()
      socket.destroy()
      reject(err)
    }
    const onTimeout = (): void =>
      fail(
        new WarrenError(
          'ERR_TIMEOUT',
          `no STUN answer over TCP from ${server.host}:${server.port} in ${timeoutMs} ms`,
          {
            hint: "The relay's STUN port may not accept TCP (older relay or a firewall); direct paths use UDP then.",
            details: { server, timeoutMs },
          },
        ),
      )
    const timer = setTimeout(onTimeout, timeoutMs)
    const onAbort = (): void => fail(opts.signal?.reason ?? new Error('aborted'))
    const onError = (err: Error): void =>
      fail(
        new WarrenError('ERR_NO_DIRECT_PATH', `STUN over TCP to ${server.host}:${server.port} failed: ${err.message}`, {
          hint: "The relay's STUN port may not accept TCP (older relay or a firewall); direct paths use UDP then.",
          cause: err,
        }),
      )
    const onData = (chunk: Buffer): void => {
      let frames: Buffer[]
      try {
        frames = takeStunFrames(state, chunk)
      } catch (err) {
        fail(
          new WarrenError(
            'ERR_PROTOCOL',
            `${server.host}:${server.port} sent no STUN over TCP: ${(err as Error).message}`,
          ),
        )
        return
      }
      const msg = frames.length === 0 ? undefined : decodeStun(frames[0]!)
      if (frames.length === 0) return
      const mapped = msg?.type === STUN_BINDING_SUCCESS ? mappedAddress(msg) : undefined
      if (mapped === undefined || !Buffer.from(msg!.transactionId).equals(Buffer.from(request.transactionId))) {
        fail(
          new WarrenError(
            'ERR_PROTOCOL',
            `the STUN server ${server.host}:${server.port} answered over TCP without an address`,
          ),
        )
        return
      }
      cleanup()
      resolve({ mapped, localPort: socket.localPort ?? 0, rttMs: performance.now() - started, socket })
    }
    const cleanup = (): void => {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      socket.off('data', onData)
      socket.off('error', onError)
      socket.on('error', () => undefined) // later errors of the parked socket are nobody's business
    }
    socket.on('data', onData)
    socket.on('error', onError)
    socket.once('connect', () => {
      // a port that nothing listens on can be handed out as our own: the kernel then connects the socket to itself
      if (isSelfConnected(socket)) onError(new Error('connected to itself (nothing listens there)'))
      else socket.write(encodeStun(request))
    })
    if (opts.signal?.aborted === true) onAbort()
    else opts.signal?.addEventListener('abort', onAbort)
  })
}

/** Whether a TCP socket is connected to itself (TCP simultaneous open of a port with itself, on one host). */
export function isSelfConnected(socket: Socket): boolean {
  return socket.localPort === socket.remotePort && socket.localAddress === socket.remoteAddress
}
