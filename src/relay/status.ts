/**
 * Circuit relay v2 statuses (named as js-libp2p's protobuf code names them) and the errors Warren makes of them.
 *
 * js-libp2p reports a refused reservation or circuit only as `… with status PERMISSION_DENIED`; Warren turns that
 * into an ERR_RELAY_REFUSED that names the relay and, for Warren relays, quotes the relay's own reason (asked over
 * `/warren/relay/1.0.0`).
 */
import { WarrenError } from '../errors.ts'

export const RELAY_STATUS = {
  OK: 'OK',
  RESERVATION_REFUSED: 'RESERVATION_REFUSED',
  RESOURCE_LIMIT_EXCEEDED: 'RESOURCE_LIMIT_EXCEEDED',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  CONNECTION_FAILED: 'CONNECTION_FAILED',
  NO_RESERVATION: 'NO_RESERVATION',
  MALFORMED_MESSAGE: 'MALFORMED_MESSAGE',
  UNEXPECTED_MESSAGE: 'UNEXPECTED_MESSAGE',
} as const

/** The status in a js-libp2p relay error message (`… with status PERMISSION_DENIED`), if there is one. */
export function relayStatusOf(err: unknown): string | undefined {
  if (err === undefined || err === null) return undefined
  const inner = (err as { errors?: unknown[] }).errors ?? []
  const text = [err, ...inner].map((e) => (e instanceof Error ? e.message : String(e))).join(' ')
  return /(?:reservation failed|failed to connect via relay) with status ([A-Z_]+)/.exec(text)?.[1]
}

const HINT =
  "Ask the relay's operator to add this node's id (`warren id`) to the relay's allow list, or use another relay."

function statusWords(status: string | undefined): string {
  switch (status) {
    case RELAY_STATUS.RESERVATION_REFUSED:
      return 'it refused the reservation'
    case RELAY_STATUS.RESOURCE_LIMIT_EXCEEDED:
      return 'one of its limits is reached'
    case RELAY_STATUS.PERMISSION_DENIED:
      return 'permission denied'
    default:
      return `status ${status ?? 'unknown'}`
  }
}

/** A reservation the relay refused; `reason` is the relay's own words when it gave them. */
export function reservationRefused(relay: string, status: string | undefined, reason?: string): WarrenError {
  return new WarrenError(
    'ERR_RELAY_REFUSED',
    `relay ${relay} refused a reservation for this node: ${reason ?? statusWords(status)}`,
    { hint: HINT, details: { relay, ...(status === undefined ? {} : { status }) } },
  )
}

/** A relayed connection the relay refused (caps, private relay) or could not make (no reservation). */
export function circuitRefused(relay: string, node: string, status: string | undefined, reason?: string): WarrenError {
  if (status === RELAY_STATUS.NO_RESERVATION) {
    return new WarrenError(
      'ERR_DIAL_FAILED',
      `node ${node} holds no reservation on relay ${relay}, so the relay cannot reach it`,
      {
        hint: 'The node may be offline or have moved to another relay; get a fresh ticket with `warren id` on that node.',
        details: { relay, node, status },
      },
    )
  }
  if (status === RELAY_STATUS.CONNECTION_FAILED) {
    return new WarrenError('ERR_DIAL_FAILED', `relay ${relay} could not reach node ${node}`, {
      hint: 'The node may have just gone offline; try again in a moment.',
      details: { relay, node, status },
    })
  }
  return new WarrenError(
    'ERR_RELAY_REFUSED',
    `relay ${relay} refused a relayed connection to node ${node}: ${reason ?? statusWords(status)}`,
    {
      hint:
        status === RELAY_STATUS.PERMISSION_DENIED
          ? `${HINT} When it names a cap, try again once fewer connections are open.`
          : HINT,
      details: { relay, node, ...(status === undefined ? {} : { status }) },
    },
  )
}
