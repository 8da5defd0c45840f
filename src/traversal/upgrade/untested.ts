/**
 * What the latest direct-path upgrade to a peer could not test, in words for `warren status`: the STUN servers (relays)
 * that did not answer, so the NAT was judged from the others. `--json` carries the same list as `upgrade.untested`.
 *
 * @example
 * ```ts
 * describeUntested({ state: 'direct', untested: ['198.18.0.4:3478 (no answer within 300 ms)'], at })
 * // '  (untested: 198.18.0.4:3478 (no answer within 300 ms))'
 * ```
 */
import type { DirectPathStatus } from './types.ts'

/** `  (untested: <server>, …)` after a peer's path, or '' when every STUN server answered. */
export function describeUntested(u: Pick<DirectPathStatus, 'untested'> | undefined): string {
  const list = u?.untested ?? []
  return list.length === 0 ? '' : `  (untested: ${list.join(', ')})`
}
