/**
 * UPnP IGD through `@achingbrain/nat-port-mapper`'s `upnpNat()`: an SSDP search for an Internet Gateway Device on the
 * LAN (the one on the default gateway's address first), then AddPortMapping / DeletePortMapping over its control URL.
 * Its own refresh timers are off (the {@link PortMapper} renews), and leases are at least an hour (the library's
 * floor). The external address comes from GetExternalIPAddress: the library fills it only for RFC 1918 hosts.
 *
 * @packageDocumentation
 */
import { type Gateway, upnpNat } from '@achingbrain/nat-port-mapper'
import { WarrenError } from '../../errors.ts'
import type { MapGrant, MapperClient, MapRequest } from './types.ts'

/** The library's gateway object inside, for the one action its API gets wrong (see {@link UpnpClient.unmap}). */
interface IgdInternals {
  getGateway(opts: { signal: AbortSignal }): Promise<{
    run(
      service: string,
      action: string,
      args: Array<[string, string | number]>,
      opts: { signal: AbortSignal },
    ): Promise<unknown>
  }>
  mappings?: Map<number, unknown>
}

const WAN_IP_CONNECTION_2 = 'urn:schemas-upnp-org:service:WANIPConnection:2'

/** The shortest lease the library asks for, s. */
const MIN_LEASE_S = 3600

function failure(err: unknown, signal: AbortSignal, what: string): WarrenError {
  if (signal.aborted) {
    return new WarrenError('ERR_PORT_MAPPING', `no UPnP IGD answered ${what}`, {
      details: { protocol: 'upnp', reason: 'no answer' },
    })
  }
  return new WarrenError('ERR_PORT_MAPPING', `the UPnP IGD refused ${what}: ${(err as Error).message}`, {
    details: { protocol: 'upnp', reason: 'refused' },
    cause: err,
  })
}

export class UpnpClient implements MapperClient {
  readonly protocol = 'upnp' as const
  readonly #preferred: string
  #gateway: Gateway | undefined

  /** `preferred`: the default gateway's address; an IGD there is taken over others. */
  constructor(preferred: string) {
    this.#preferred = preferred
  }

  async probe(signal: AbortSignal): Promise<void> {
    const client = upnpNat({ autoRefresh: false })
    let first: Gateway | undefined
    try {
      for await (const gw of client.findGateways({ signal })) {
        if (gw.family !== 'IPv4') continue
        first ??= gw
        if (gw.host === this.#preferred) {
          first = gw
          break
        }
      }
    } catch (err) {
      if (first === undefined) throw failure(err, signal, 'the SSDP search')
    }
    if (first === undefined) throw failure(new Error('no IGD'), AbortSignal.abort(), 'the SSDP search')
    this.#gateway = first
  }

  #require(): Gateway {
    if (this.#gateway === undefined) throw new WarrenError('ERR_PORT_MAPPING', 'no UPnP IGD was found')
    return this.#gateway
  }

  async map(req: MapRequest, signal: AbortSignal): Promise<MapGrant> {
    const gw = this.#require()
    try {
      const m = await gw.map(req.internalPort, req.internalHost, {
        protocol: req.transport,
        externalPort: req.externalPort ?? req.internalPort,
        ttl: req.lifetimeS * 1000,
        autoRefresh: false,
        description: 'warren',
        signal,
      })
      // the library keeps a list per port that grows with every renewal; the mapper keeps its own
      ;(gw as unknown as IgdInternals).mappings?.delete(req.internalPort)
      const externalHost = await gw.externalIp({ signal })
      return { externalHost, externalPort: m.externalPort, lifetimeS: Math.max(req.lifetimeS, MIN_LEASE_S) }
    } catch (err) {
      throw failure(err, signal, `AddPortMapping ${req.transport} ${req.internalPort}`)
    }
  }

  /**
   * DeletePortMapping of the external port and protocol. The library's own `unmap` sends the internal port and an empty
   * protocol and swallows errors, so the SOAP action is run through its device object.
   */
  async unmap(req: MapRequest & { externalPort: number }, signal: AbortSignal): Promise<void> {
    const gw = this.#require() as unknown as IgdInternals
    try {
      const device = await gw.getGateway({ signal })
      await device.run(
        WAN_IP_CONNECTION_2,
        'DeletePortMapping',
        [
          ['NewRemoteHost', ''],
          ['NewExternalPort', req.externalPort],
          ['NewProtocol', req.transport.toUpperCase()],
        ],
        { signal },
      )
      gw.mappings?.delete(req.internalPort)
    } catch (err) {
      throw failure(err, signal, `DeletePortMapping ${req.transport} ${req.externalPort}`)
    }
  }

  async lost(externalHost: string, signal: AbortSignal): Promise<boolean> {
    try {
      return (await this.#require().externalIp({ signal })) !== externalHost
    } catch (err) {
      throw failure(err, signal, 'GetExternalIPAddress')
    }
  }

  async close(): Promise<void> {
    // not gw.stop(): that would delete the mappings again, which the mapper did already
    this.#gateway = undefined
  }
}
