/**
 * One port-mapping attempt within one budget: probes every protocol client at once (bounded by the probe timeout),
 * then maps with the first that answered, in the order PCP, NAT-PMP, UPnP; a protocol that answers but refuses the
 * mapping gives way to the next. Each protocol that answered gets an equal share of what the probe left of the budget.
 *
 * @packageDocumentation
 */
import { WarrenError } from '../../errors.ts'
import { bounded, outcomeOf } from './outcome.ts'
import type { MapGrant, MapperClient, MapRequest, PortMapProtocol, ProbeOutcome } from './types.ts'

const ORDER: readonly PortMapProtocol[] = ['pcp', 'nat-pmp', 'upnp']
/** Kept off each attempt's budget: timers fire a few ms late, and the attempt must end within its budget. */
const TIMER_SLACK_MS = 50

export interface AttemptOptions {
  /** The clients of the protocols that are on. */
  clients: MapperClient[]
  requests: MapRequest[]
  protocols: { pcp: boolean; natPmp: boolean; upnp: boolean }
  /** `performance.now()` when the attempt began: the budget counts from it. */
  started: number
  budgetMs: number
  probeTimeoutMs: number
  /** Bound on one map request, ms. */
  requestTimeoutMs: number
  /** A signal that aborts after `ms` or when the mapper stops. */
  signal(ms: number): AbortSignal
  stopped(): boolean
  /** Keeps a granted mapping. */
  hold(protocol: PortMapProtocol, req: MapRequest, grant: MapGrant): void
  /** How many mappings are kept (none before the attempt). */
  heldCount(): number
}

export interface AttemptResult {
  /** The client whose mappings are kept; undefined when none mapped. */
  chosen: MapperClient | undefined
  /** Each protocol's outcome. */
  probes: Partial<Record<PortMapProtocol, ProbeOutcome>>
  attemptMs: number
}

/** Probes, then maps with the first protocol that answered and grants; see the file comment. */
export async function attemptMapping(o: AttemptOptions): Promise<AttemptResult> {
  const { clients, budgetMs, started } = o
  const probes: Partial<Record<PortMapProtocol, ProbeOutcome>> = {}
  const { pcp, natPmp, upnp } = o.protocols
  if (!pcp) probes.pcp = 'off'
  if (!natPmp) probes['nat-pmp'] = 'off'
  if (!upnp) probes.upnp = 'off'
  const signal = o.signal(Math.min(o.probeTimeoutMs, budgetMs))
  await Promise.all(
    clients.map((c) =>
      bounded(c.protocol, c.probe(signal), signal).then(
        () => {
          probes[c.protocol] = 'ok'
        },
        (err: unknown) => {
          probes[c.protocol] = outcomeOf(err)
        },
      ),
    ),
  )
  let chosen: MapperClient | undefined
  const answered = ORDER.flatMap((p) => {
    const c = clients.find((x) => x.protocol === p)
    return c !== undefined && probes[p] === 'ok' ? [c] : []
  })
  for (const [i, c] of answered.entries()) {
    if (o.stopped()) break
    // an equal share of what is left of the budget for this protocol and each one after it
    const share = Math.floor((budgetMs - TIMER_SLACK_MS - (performance.now() - started)) / (answered.length - i))
    if (share < 1) {
      probes[c.protocol] = 'no answer'
      continue
    }
    const granted = await mapAll(o, c, share)
    if (granted.ok) {
      chosen = c
      for (const rest of answered.slice(i + 1)) probes[rest.protocol] = 'not needed'
      break
    }
    probes[c.protocol] = granted.outcome
  }
  return { chosen, probes, attemptMs: Math.round(performance.now() - started) }
}

/** Maps every request with `c` within `boundMs` in all; ok when at least one was granted (those are held). */
async function mapAll(
  o: AttemptOptions,
  c: MapperClient,
  boundMs: number,
): Promise<{ ok: true } | { ok: false; outcome: ProbeOutcome }> {
  let last: unknown
  const bound = o.signal(boundMs)
  for (const req of o.requests) {
    try {
      const one = AbortSignal.any([bound, AbortSignal.timeout(o.requestTimeoutMs)])
      const asked = c.map(req, one)
      // a grant that arrives after the bound is deleted, not held (best effort)
      asked.then(
        (late) => {
          if (one.aborted)
            c.unmap({ ...req, externalPort: late.externalPort }, AbortSignal.timeout(2000)).catch(() => {})
        },
        () => {},
      )
      const grant = await bounded(c.protocol, asked, one)
      o.hold(c.protocol, req, grant)
    } catch (err) {
      last = err
      // a gateway that answered the probe but not this MAP will not answer the next one sooner: no second wait
      if (outcomeOf(err) === 'no answer') {
        last = new WarrenError('ERR_PORT_MAPPING', `the gateway answered ${c.protocol} but not the mapping request`, {
          details: { protocol: c.protocol, reason: 'refused' },
        })
        break
      }
    }
  }
  return o.heldCount() > 0 ? { ok: true } : { ok: false, outcome: outcomeOf(last) }
}
