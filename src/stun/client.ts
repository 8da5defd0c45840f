/**
 * STUN Binding client that runs on a socket the caller already owns (see {@link PacketSocket}), so the public mapping it
 * learns is the one the direct path will use. Retransmits with a doubling interval (RFC 5389 §7.2.1), bounded in time.
 *
 * @example
 * ```ts
 * const sock = fromUdx(udxSocket)
 * const { mapped } = await stunBinding(sock, { host: '198.18.0.1', port: 3478 })
 * ```
 *
 * @packageDocumentation
 */
import { WarrenError } from '../errors.ts'
import type { Endpoint, PacketSocket } from '../p2p/udx/packet-socket.ts'
import { bindingRequest, decodeStun, encodeStun, mappedAddress, STUN_BINDING_SUCCESS } from './codec.ts'

export interface StunBindingOptions {
  /** Give up after this long (default 3000 ms). */
  timeoutMs?: number
  /** First retransmission after this long, doubling after each (default 100 ms). */
  rtoMs?: number
  signal?: AbortSignal
}

export interface StunBindingResult {
  /** Our address as the STUN server saw it. */
  mapped: Endpoint
  /** Round-trip time of the answered request. */
  rttMs: number
}

function sameTransaction(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}

/** Sends a Binding request to `server` from `socket` and resolves with the mapped address. Rejects with ERR_TIMEOUT. */
export function stunBinding(
  socket: PacketSocket,
  server: Endpoint,
  options: StunBindingOptions = {},
): Promise<StunBindingResult> {
  const timeoutMs = options.timeoutMs ?? 3000
  const rtoMs = options.rtoMs ?? 100
  const request = bindingRequest()
  const packet = encodeStun(request)
  const started = performance.now()
  return new Promise((resolve, reject) => {
    let rto = rtoMs
    let timer: NodeJS.Timeout | undefined
    const finish = (err?: Error, result?: StunBindingResult): void => {
      clearTimeout(timer)
      clearTimeout(deadline)
      off()
      options.signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) reject(err)
      else resolve(result!)
    }
    const off = socket.onMessage((data, from) => {
      if (from.port !== server.port || from.host !== server.host) return
      const msg = decodeStun(data)
      if (msg === undefined || !sameTransaction(msg.transactionId, request.transactionId)) return
      const mapped = msg.type === STUN_BINDING_SUCCESS ? mappedAddress(msg) : undefined
      if (mapped === undefined) {
        finish(
          new WarrenError('ERR_PROTOCOL', `the STUN server ${server.host}:${server.port} answered without an address`, {
            hint: 'Point Warren at a STUN server that implements RFC 5389 Binding (every Warren relay does).',
          }),
        )
        return
      }
      finish(undefined, { mapped, rttMs: performance.now() - started })
    })
    const sendOnce = (): void => {
      socket.send(packet, server)
      timer = setTimeout(sendOnce, rto)
      rto *= 2
    }
    const deadline = setTimeout(() => {
      finish(
        new WarrenError('ERR_TIMEOUT', `no STUN answer from ${server.host}:${server.port} within ${timeoutMs} ms`, {
          hint: "Check that the relay's STUN port is reachable over UDP (firewalls often block UDP) and the port is right.",
          details: { server, timeoutMs },
        }),
      )
    }, timeoutMs)
    const onAbort = (): void => finish(options.signal?.reason ?? new Error('aborted'))
    if (options.signal?.aborted === true) {
      onAbort()
      return
    }
    options.signal?.addEventListener('abort', onAbort)
    sendOnce()
  })
}
