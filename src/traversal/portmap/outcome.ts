/**
 * The outcome of one port-mapping attempt per protocol: a protocol call bounded by its signal, the {@link ProbeOutcome}
 * an error stands for, and the one-line reason the status gives when nothing was mapped.
 *
 * @packageDocumentation
 */
import { WarrenError } from '../../errors.ts'
import type { PortMapProtocol, ProbeOutcome } from './types.ts'

const ORDER: readonly PortMapProtocol[] = ['pcp', 'nat-pmp', 'upnp']

/**
 * `work`, or a `no answer` error as soon as `signal` ends: library calls do not all stop at once on abort (NAT-PMP's
 * client is stopped after, UPnP's HTTP request may be mid-flight), and the attempt must end within its budget.
 */
export function bounded<T>(protocol: PortMapProtocol, work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) work.catch(() => {})
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => {})
      reject(
        new WarrenError('ERR_PORT_MAPPING', `no ${protocol} answer within the bound`, {
          details: { protocol, reason: 'no answer' },
        }),
      )
    }
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

export function outcomeOf(err: unknown): ProbeOutcome {
  const e = err as WarrenError | undefined
  const reason = (e?.details as { reason?: string } | undefined)?.reason
  if (reason === 'no answer') return 'no answer'
  if (reason === 'refused') return `refused: ${e!.message}`
  return `failed: ${e?.message ?? 'unknown'}`
}

/** Why no mapping: the outcome per protocol, in one line. */
export function summary(probes: Partial<Record<PortMapProtocol, ProbeOutcome>>): string {
  const parts = ORDER.flatMap((p) => (probes[p] === undefined ? [] : [`${p}: ${probes[p]}`]))
  return parts.length === 0 ? 'no protocol was tried' : parts.join('; ')
}
