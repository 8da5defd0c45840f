/**
 * The shapes of port mapping: one mapping a gateway granted, the status `warren status` and `warren netcheck` show,
 * and what each protocol client (PCP, NAT-PMP, UPnP IGD) offers the {@link PortMapper} (port-mapper.ts).
 *
 * @packageDocumentation
 */

export type PortMapProtocol = 'pcp' | 'nat-pmp' | 'upnp'
export type MappedTransport = 'tcp' | 'udp'

/** One mapping the gateway holds for this node. */
export interface PortMapping {
  protocol: PortMapProtocol
  transport: MappedTransport
  /** `host:port` on this host. */
  internal: string
  /** `host:port` others reach this node on. */
  external: string
  /** When the gateway forgets it unless renewed (epoch ms). */
  expiresAt: number
}

/**
 * What the latest attempt found for one protocol: `ok` (it answered, and holds the mappings when `protocol` names it),
 * `not needed` (it answered, but a protocol tried before it mapped), `no answer`, `off` (config), refused or failed.
 */
export type ProbeOutcome = 'ok' | 'no answer' | 'off' | 'not needed' | `refused: ${string}` | `failed: ${string}`

export interface PortMapStatus {
  /** `off`: config turned it off; `probing`; `mapped`: at least one mapping; `none`: the gateway gave none. */
  state: 'off' | 'probing' | 'mapped' | 'none'
  /** The protocol whose mappings are held. */
  protocol?: PortMapProtocol
  /** The default gateway asked. */
  gateway?: string
  mappings: PortMapping[]
  /** Per protocol, the latest probe's outcome. */
  probes: Partial<Record<PortMapProtocol, ProbeOutcome>>
  /** Why there is no mapping (state `none`). */
  reason?: string
  /** When the latest probe ran (epoch ms). */
  probedAt?: number
  /** How long the latest attempt took, probe and first mapping tries together, ms (at most {@link budgetMs}). */
  attemptMs?: number
  /** The bound on one attempt, ms. */
  budgetMs?: number
}

/** What the mapper asks a protocol to map. */
export interface MapRequest {
  transport: MappedTransport
  internalHost: string
  internalPort: number
  /** The external port to ask for (the one held before, on renewal). */
  externalPort?: number
  lifetimeS: number
}

/** What the gateway granted. */
export interface MapGrant {
  externalHost: string
  externalPort: number
  lifetimeS: number
  /** The gateway lost its state since the previous answer (PCP epoch went backwards): map everything again. */
  reset?: boolean
}

/** One protocol's client, bound to one gateway. */
export interface MapperClient {
  readonly protocol: PortMapProtocol
  /** One short question that tells whether the gateway speaks this protocol; rejects when it does not. */
  probe(signal: AbortSignal): Promise<void>
  map(req: MapRequest, signal: AbortSignal): Promise<MapGrant>
  unmap(req: MapRequest & { externalPort: number }, signal: AbortSignal): Promise<void>
  /**
   * A cheap check that the gateway still holds its state: resolves `true` when it lost it (restart, new external
   * address) and everything must be mapped again, `undefined` when it cannot tell (the mapper renews to find out).
   */
  lost(externalHost: string, signal: AbortSignal): Promise<boolean | undefined>
  close(): Promise<void>
}
