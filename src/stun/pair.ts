/**
 * The relay's STUN responder on one port number over UDP and TCP. UDP is required; TCP is best effort (without it
 * nodes punch UDP direct paths only).
 *
 * With port 0 the operating system picks the UDP port, and that number can be taken over TCP by another process.
 * Then the pair is started again on a new free port, up to {@link STUN_PAIR_TRIES} times, so that an automatic port
 * gets both halves whenever the machine has such a port. A port the operator chose is never changed: if TCP cannot
 * bind it, the responder runs over UDP only and `tcpError` says why.
 *
 * @packageDocumentation
 */
import type { StunResponder, StunResponderOptions } from './codec.ts'
import { startStunResponder } from './codec.ts'
import { type StunTcpResponder, startStunTcpResponder } from './tcp-server.ts'

/** How many free UDP ports are tried for a port-0 responder before settling for UDP only. */
export const STUN_PAIR_TRIES = 8

export interface StunPair {
  udp: StunResponder
  /** Undefined when no TCP responder could be bound; `tcpError` then says why. */
  tcp: StunTcpResponder | undefined
  tcpError: Error | undefined
}

export interface StunPairStarters {
  udp?: (options: StunResponderOptions) => Promise<StunResponder>
  tcp?: (options: { host?: string; port: number }) => Promise<StunTcpResponder>
}

/** Starts the UDP responder (rejecting like {@link startStunResponder}) and a TCP responder on the same port. */
export async function startStunPair(
  options: { host: string; port: number },
  starters: StunPairStarters = {},
): Promise<StunPair> {
  const startUdp = starters.udp ?? startStunResponder
  const startTcp = starters.tcp ?? startStunTcpResponder
  const tries = options.port === 0 ? STUN_PAIR_TRIES : 1
  let last: StunPair | undefined
  for (let i = 0; i < tries; i++) {
    let udp: StunResponder
    try {
      udp = await startUdp({ host: options.host, port: options.port })
    } catch (err) {
      if (last !== undefined) return last
      throw err
    }
    try {
      const tcp = await startTcp({ host: udp.address.host, port: udp.address.port })
      await last?.udp.close()
      return { udp, tcp, tcpError: undefined }
    } catch (err) {
      // keep this UDP responder as the fallback until a later port gets both halves
      await last?.udp.close()
      last = { udp, tcp: undefined, tcpError: err as Error }
    }
  }
  return last!
}
