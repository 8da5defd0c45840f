/**
 * NAT-PMP (RFC 6886) through `@achingbrain/nat-port-mapper`'s `pmpNat(gateway)`, with its edges worked around:
 *
 * - a request that gets no answer blocks its queue for good, so every operation uses a fresh client, stopped after;
 * - `ttl` is written to the wire as seconds (its docs say ms), so seconds are passed;
 * - the mapping's `externalHost` is only filled for RFC 1918 hosts, so the external address is asked separately;
 * - the granted lifetime and the epoch are not returned: the requested lifetime is taken as granted, and a gateway
 *   restart shows up only as a renewal that maps again (or a changed external address).
 *
 * @packageDocumentation
 */
import { pmpNat } from '@achingbrain/nat-port-mapper'
import { WarrenError } from '../../errors.ts'
import type { MapGrant, MapperClient, MapRequest } from './types.ts'

type PmpGateway = ReturnType<typeof pmpNat>

function failure(err: unknown, signal: AbortSignal, gateway: string): WarrenError {
  if (signal.aborted) {
    return new WarrenError('ERR_PORT_MAPPING', `no NAT-PMP answer from ${gateway}:5351`, {
      details: { protocol: 'nat-pmp', reason: 'no answer' },
    })
  }
  return new WarrenError('ERR_PORT_MAPPING', `the gateway refused the NAT-PMP request: ${(err as Error).message}`, {
    details: { protocol: 'nat-pmp', reason: 'refused' },
    cause: err,
  })
}

export class NatPmpClient implements MapperClient {
  readonly protocol = 'nat-pmp' as const
  readonly #gateway: string

  constructor(gateway: string) {
    this.#gateway = gateway
  }

  async #with<T>(signal: AbortSignal, fn: (gw: PmpGateway) => Promise<T>): Promise<T> {
    const gw = pmpNat(this.#gateway, { autoRefresh: false })
    try {
      return await fn(gw)
    } catch (err) {
      throw failure(err, signal, this.#gateway)
    } finally {
      await gw.stop().catch(() => undefined)
    }
  }

  async probe(signal: AbortSignal): Promise<void> {
    await this.#with(signal, (gw) => gw.externalIp({ signal }))
  }

  map(req: MapRequest, signal: AbortSignal): Promise<MapGrant> {
    return this.#with(signal, async (gw) => {
      const m = await gw.map(req.internalPort, req.internalHost, {
        protocol: req.transport,
        externalPort: req.externalPort ?? req.internalPort,
        ttl: req.lifetimeS,
        autoRefresh: false,
        signal,
      })
      const externalHost = await gw.externalIp({ signal })
      return { externalHost, externalPort: m.externalPort, lifetimeS: req.lifetimeS }
    })
  }

  async unmap(req: MapRequest & { externalPort: number }, signal: AbortSignal): Promise<void> {
    await this.#with(signal, async (gw) => {
      await gw.map(req.internalPort, req.internalHost, {
        protocol: req.transport,
        externalPort: 0,
        ttl: 0,
        autoRefresh: false,
        signal,
      })
    })
  }

  async lost(externalHost: string, signal: AbortSignal): Promise<boolean> {
    const now = await this.#with(signal, (gw) => gw.externalIp({ signal }))
    return now !== externalHost
  }

  async close(): Promise<void> {}
}
