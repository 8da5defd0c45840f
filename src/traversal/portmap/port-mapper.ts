/**
 * Asks the router for port mappings of this node's TCP listen port and UDP traversal port, so that peers can reach it
 * directly even through a symmetric NAT.
 *
 * At start and on a network change (default gateway or local address changed, checked every 30 s), it probes PCP,
 * NAT-PMP and UPnP IGD at once with one short question each (≤ 1.5 s), then maps with the first protocol that
 * answered, in the order PCP, NAT-PMP, UPnP (a protocol that answers but refuses the mapping gives way to the next).
 * The probe and these first mapping tries share one budget (2 s by default): each protocol that answered gets an equal
 * share of what the probe left, so a router that answers the probe but drops every mapping request costs the budget
 * once, and the status tells each protocol's outcome and how long the whole attempt took (`attemptMs`).
 * Nothing waits for it: node start and dials go on meanwhile, and a router that never answers costs one probe.
 *
 * A mapping is renewed at half its lifetime. Between renewals, a cheap check (PCP: ANNOUNCE and its epoch; NAT-PMP and
 * UPnP: the external address) runs every quarter lifetime (2–60 s) and leaves the renewal where it is: a gateway that
 * restarted (epoch went back), changed its external address, or stopped answering gets every mapping asked for again
 * at once, and so does a mapping an earlier renewal lost; when none is granted, the protocols are probed again.
 * {@link refresh} does the same on demand (a direct path went silent). On stop, every mapping is deleted (bounded to
 * 2 s). A `change` event fires whenever the list of mappings changes.
 *
 * ```ts
 * const mapper = new PortMapper({ ports: () => ({ tcp: 4781, udp: 50123 }), protocols: { pcp: true, natPmp: true, upnp: true } })
 * mapper.addEventListener('change', () => console.log(mapper.mappings()))
 * mapper.start()
 * ```
 *
 * @packageDocumentation
 */
import type { Logger } from '../../log.ts'
import { attemptMapping } from './attempt.ts'
import { type DefaultGateway, findDefaultGateway } from './gateway.ts'
import { NatPmpClient } from './nat-pmp.ts'
import { summary } from './outcome.ts'
import { PcpClient } from './pcp.ts'
import type {
  MapGrant,
  MappedTransport,
  MapperClient,
  MapRequest,
  PortMapProtocol,
  PortMapping,
  PortMapStatus,
} from './types.ts'
import { UpnpClient } from './upnp.ts'

export interface PortMapperOptions {
  /** The ports to map now for this host's address `local` toward the gateway (read at every probe). */
  ports(local: string): { tcp?: number; udp?: number }
  protocols: { pcp: boolean; natPmp: boolean; upnp: boolean }
  /** Lifetime asked for, s (default 7200). */
  lifetimeS?: number
  /** Bound on the probe of all protocols together, ms (default 1500, at most the budget). */
  probeTimeoutMs?: number
  /** Bound on one attempt: the probe and the first mapping tries of every protocol that answered, ms (default 2000). */
  budgetMs?: number
  /** Bound on one map, renew or check, ms (default 2000). */
  requestTimeoutMs?: number
  /** How often the default gateway is read to notice a network change, ms (default 30000). */
  networkCheckMs?: number
  /** Without a mapping, the first retry this long after the probe, ms (default 30000; then doubling up to 30 min). */
  retryFirstMs?: number
  /** Where the gateway comes from (default: /proc/net/route). */
  findGateway?: () => Promise<DefaultGateway | undefined>
  /** The protocol clients for a gateway (default: PCP, NAT-PMP, UPnP on it); those of protocols off are left out. */
  clients?: (gw: DefaultGateway) => MapperClient[]
  log?: Logger
}

interface Held {
  req: MapRequest
  grant: MapGrant
  mapping: PortMapping
}

/** With no mapping, the first retry comes this long after the probe, ms; each later one waits twice as long… */
const RETRY_FIRST_MS = 30_000
/** …up to this, ms. */
const RETRY_MAX_MS = 30 * 60_000

export class PortMapper extends EventTarget {
  readonly #opts: PortMapperOptions
  readonly #log: Logger
  readonly #lifetimeS: number
  #status: PortMapStatus = { state: 'probing', mappings: [], probes: {} }
  #gateway: DefaultGateway | undefined
  #client: MapperClient | undefined
  readonly #held = new Map<MappedTransport, Held>()
  #queue: Promise<void> = Promise.resolve()
  #renewTimer: NodeJS.Timeout | undefined
  #checkTimer: NodeJS.Timeout | undefined
  #netTimer: NodeJS.Timeout | undefined
  /** Probes in a row that found no mapping since the last network change (for the retry back-off). */
  #retries = 0
  #stopped = false
  readonly #stopSignal = new AbortController()

  constructor(opts: PortMapperOptions) {
    super()
    this.#opts = opts
    this.#log = opts.log ?? (() => {})
    this.#lifetimeS = opts.lifetimeS ?? 7200
    const { pcp, natPmp, upnp } = opts.protocols
    if (!pcp && !natPmp && !upnp)
      this.#status = { state: 'off', mappings: [], probes: {}, reason: 'every protocol is off' }
  }

  /** The mappings held now. */
  mappings(): PortMapping[] {
    return [...this.#held.values()].map((h) => ({ ...h.mapping }))
  }

  status(): PortMapStatus {
    return { ...this.#status, mappings: this.mappings(), probes: { ...this.#status.probes } }
  }

  /** Probes and maps in the background; returns at once. */
  start(): void {
    if (this.#status.state === 'off') return
    this.#enqueue(() => this.#probeAndMap('start'))
    const every = this.#opts.networkCheckMs ?? 30_000
    this.#netTimer = setInterval(() => this.#enqueue(() => this.#watchNetwork()), every)
    this.#netTimer.unref()
  }

  /** Asks again now: renews what is held (mapping it anew where the gateway forgot), or probes when nothing is. */
  refresh(why: string): void {
    if (this.#status.state === 'off' || this.#stopped) return
    this.#enqueue(() => (this.#held.size > 0 ? this.#renew(why) : this.#probeAndMap(why)))
  }

  /** Deletes every mapping (bounded) and stops. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearInterval(this.#netTimer)
    clearTimeout(this.#renewTimer)
    clearTimeout(this.#checkTimer)
    this.#stopSignal.abort(new Error('the port mapper stopped'))
    await this.#queue
    await this.#deleteAll(this.#opts.requestTimeoutMs ?? 2000)
    await this.#client?.close()
    this.#client = undefined
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#stopped) return
      try {
        await task()
      } catch (err) {
        this.#log('debug', `port mapping: ${(err as Error).message}`)
      }
    })
  }

  #signal(ms: number): AbortSignal {
    return AbortSignal.any([AbortSignal.timeout(ms), this.#stopSignal.signal])
  }

  #emit(): void {
    this.#status = { ...this.#status, mappings: this.mappings() }
    this.dispatchEvent(new Event('change'))
  }

  #clientsFor(gw: DefaultGateway): MapperClient[] {
    const { pcp, natPmp, upnp } = this.#opts.protocols
    const on = { pcp, 'nat-pmp': natPmp, upnp }
    if (this.#opts.clients !== undefined) return this.#opts.clients(gw).filter((c) => on[c.protocol])
    return [
      ...(pcp ? [new PcpClient(gw.gateway, gw.local)] : []),
      ...(natPmp ? [new NatPmpClient(gw.gateway)] : []),
      ...(upnp ? [new UpnpClient(gw.gateway)] : []),
    ]
  }

  #requests(): MapRequest[] {
    const local = this.#gateway?.local ?? ''
    const ports = this.#opts.ports(local)
    return (['tcp', 'udp'] as const).flatMap((transport) => {
      const port = ports[transport]
      return port === undefined || port === 0
        ? []
        : [{ transport, internalHost: local, internalPort: port, lifetimeS: this.#lifetimeS }]
    })
  }

  async #probeAndMap(why: string): Promise<void> {
    await this.#dropAll()
    const gw = await (this.#opts.findGateway ?? findDefaultGateway)()
    this.#gateway = gw
    const probedAt = Date.now()
    if (gw === undefined) {
      this.#status = { state: 'none', mappings: [], probes: {}, reason: 'no IPv4 default gateway', probedAt }
      this.#emit()
      return
    }
    const requests = this.#requests()
    if (requests.length === 0) {
      this.#status = {
        state: 'none',
        gateway: gw.gateway,
        mappings: [],
        probes: {},
        reason: 'no port to map',
        probedAt,
      }
      this.#emit()
      return
    }
    this.#status = { state: 'probing', gateway: gw.gateway, mappings: [], probes: {} }
    const budgetMs = this.#opts.budgetMs ?? 2000
    const started = performance.now()
    const clients = this.#clientsFor(gw)
    const { chosen, probes, attemptMs } = await attemptMapping({
      clients,
      requests,
      protocols: this.#opts.protocols,
      started,
      budgetMs,
      probeTimeoutMs: this.#opts.probeTimeoutMs ?? 1500,
      requestTimeoutMs: this.#opts.requestTimeoutMs ?? 2000,
      signal: (ms) => this.#signal(ms),
      stopped: () => this.#stopped,
      hold: (protocol, req, grant) => this.#hold(protocol, req, grant),
      heldCount: () => this.#held.size,
    })
    for (const c of clients) if (c !== chosen) await c.close()
    this.#client = chosen
    if (chosen === undefined) {
      const reason = summary(probes)
      this.#status = { state: 'none', gateway: gw.gateway, mappings: [], probes, reason, probedAt, attemptMs, budgetMs }
      this.#log('info', `port mapping: none from ${gw.gateway} (${why}): ${reason}`)
      this.#emit()
      return
    }
    this.#retries = 0
    this.#status = {
      state: 'mapped',
      protocol: chosen.protocol,
      gateway: gw.gateway,
      mappings: [],
      probes,
      probedAt,
      attemptMs,
      budgetMs,
    }
    this.#log(
      'info',
      `port mapping (${chosen.protocol}) from ${gw.gateway}: ${this.mappings()
        .map((m) => `${m.transport} ${m.internal} → ${m.external}`)
        .join(', ')}`,
    )
    this.#emit()
    this.#schedule()
  }

  #hold(protocol: PortMapProtocol, req: MapRequest, grant: MapGrant): void {
    this.#held.set(req.transport, {
      req,
      grant,
      mapping: {
        protocol,
        transport: req.transport,
        internal: `${req.internalHost}:${req.internalPort}`,
        external: `${grant.externalHost}:${grant.externalPort}`,
        expiresAt: Date.now() + grant.lifetimeS * 1000,
      },
    })
  }

  /** The shortest lifetime granted to what is held, s. */
  #lifetimeHeldS(): number {
    return Math.min(...[...this.#held.values()].map((h) => h.grant.lifetimeS))
  }

  /** After a grant: the renewal at half the shortest lifetime held, and the next check. */
  #schedule(): void {
    clearTimeout(this.#renewTimer)
    if (this.#stopped || this.#held.size === 0) {
      clearTimeout(this.#checkTimer)
      return
    }
    this.#renewTimer = setTimeout(
      () => this.#enqueue(() => this.#renew('half the lifetime passed')),
      (this.#lifetimeHeldS() * 1000) / 2,
    )
    this.#renewTimer.unref()
    this.#scheduleCheck()
  }

  /**
   * The next check, a quarter of the shortest lifetime held from now (2–60 s). Only the check: a check that finds
   * nothing lost leaves the renewal where it is, or checks more often than renewals would put the renewal off for good.
   */
  #scheduleCheck(): void {
    clearTimeout(this.#checkTimer)
    if (this.#stopped || this.#held.size === 0) return
    const checkMs = Math.min(60_000, Math.max(2_000, (this.#lifetimeHeldS() * 1000) / 4))
    this.#checkTimer = setTimeout(() => this.#enqueue(() => this.#check()), checkMs)
    this.#checkTimer.unref()
  }

  /** The cheap check between renewals: asks everything again when the gateway lost its state or went silent. */
  async #check(): Promise<void> {
    const c = this.#client
    const first = this.#held.values().next().value
    if (c === undefined || first === undefined) return
    let lost: boolean | undefined | string
    try {
      lost = await c.lost(first.grant.externalHost, this.#signal(this.#opts.requestTimeoutMs ?? 2000))
    } catch (err) {
      lost = (err as Error).message
    }
    // a mapping an earlier renewal lost is asked for again now, not at the next renewal
    if (lost === false && this.#requests().every((r) => this.#held.has(r.transport))) {
      this.#scheduleCheck()
      return
    }
    const why =
      lost === true
        ? 'the gateway lost its mappings (restart or new address)'
        : lost === false
          ? 'a mapping lost in a renewal'
          : (lost ?? 'check by renewal')
    await this.#renew(why)
  }

  /**
   * Renews every mapping, keeping its external port, and asks again for one an earlier renewal lost (the gateway
   * answered for one transport and not the other); when none is held afterwards, probes again.
   */
  async #renew(why: string): Promise<void> {
    const c = this.#client
    if (c === undefined) return this.#probeAndMap(why)
    let changed = false
    let failed: unknown
    // what is held, asked for with the external port it has; then what was lost, asked for as at the first try
    const held = [...this.#held.values()].map((h) => ({
      req: h.req,
      ask: { ...h.req, externalPort: h.grant.externalPort },
    }))
    const lost = this.#requests()
      .filter((r) => !this.#held.has(r.transport))
      .map((r) => ({ req: r, ask: r }))
    for (const { req, ask } of [...held, ...lost]) {
      const before = this.#held.get(req.transport)?.mapping.external
      try {
        const grant = await c.map(ask, this.#signal(this.#opts.requestTimeoutMs ?? 2000))
        this.#hold(c.protocol, req, grant)
        if (this.#held.get(req.transport)!.mapping.external !== before) changed = true
      } catch (err) {
        failed = err
        if (this.#held.delete(req.transport)) changed = true
      }
    }
    if (this.#held.size === 0) {
      this.#log('info', `port mapping: renewal failed (${why}): ${(failed as Error)?.message}; probing again`)
      await this.#client?.close()
      this.#client = undefined
      this.#emit()
      return this.#probeAndMap(why)
    }
    if (failed !== undefined) {
      this.#log(
        'info',
        `port mapping: a renewal failed (${why}): ${(failed as Error).message}; asked again at the next check`,
      )
    }
    this.#log('debug', `port mapping renewed (${why})`)
    if (changed) this.#emit()
    this.#schedule()
  }

  async #watchNetwork(): Promise<void> {
    const gw = await (this.#opts.findGateway ?? findDefaultGateway)()
    const before = this.#gateway
    if (gw?.gateway === before?.gateway && gw?.local === before?.local) {
      // without a mapping (an answer lost on a busy link, a router rebooting, port mapping turned on at the router)
      // it asks again now and then: after 30 s, doubling up to 30 min
      const st = this.#status
      if (st.state !== 'none' || gw === undefined || st.probedAt === undefined) return
      const wait = Math.min((this.#opts.retryFirstMs ?? RETRY_FIRST_MS) * 2 ** this.#retries, RETRY_MAX_MS)
      if (Date.now() - st.probedAt < wait) return
      this.#retries++
      await this.#probeAndMap(`no mapping yet, asking again (attempt ${this.#retries + 1})`)
      return
    }
    this.#retries = 0
    await this.#probeAndMap(`network changed: gateway ${before?.gateway ?? 'none'} → ${gw?.gateway ?? 'none'}`)
  }

  /** Forgets the mappings without asking the gateway (it may be gone). */
  async #dropAll(): Promise<void> {
    clearTimeout(this.#renewTimer)
    clearTimeout(this.#checkTimer)
    const had = this.#held.size > 0
    await this.#deleteAll(500)
    await this.#client?.close()
    this.#client = undefined
    if (had) this.#emit()
  }

  async #deleteAll(boundMs: number): Promise<void> {
    const c = this.#client
    const held = [...this.#held.values()]
    this.#held.clear()
    if (c === undefined || held.length === 0) return
    const signal = AbortSignal.timeout(boundMs)
    await Promise.all(
      held.map((h) =>
        c.unmap({ ...h.req, externalPort: h.grant.externalPort }, signal).catch((err: Error) => {
          this.#log('debug', `port mapping: delete of ${h.mapping.external} failed: ${err.message}`)
        }),
      ),
    )
  }
}
