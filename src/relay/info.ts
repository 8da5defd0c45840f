/**
 * `/warren/relay/1.0.0`: a node asks a Warren relay what it grants this node. The node sends one JSON request
 * (`{"intent":"info"}`, or `{"intent":"reserve"}` before asking for a reservation, with `"token"` when the node has the
 * relay's shared token) and closes its side; the relay
 * answers one JSON object (UTF-8, at most 16 KiB) and closes. A `reserve` request the relay would refuse counts (and
 * is logged) as a refused reservation, so the node need not make one just to hear the reason.
 *
 * It carries what circuit relay v2 cannot: the duration limit in seconds (see the upstream bug in docs/relay.md), the
 * reason of the node's latest refusal (circuit relay v2 only has a status number), and the relay's STUN port.
 *
 * @example
 * ```ts
 * const info = await queryRelayInfo(libp2p, relayPeerId)
 * if (info.refusal) console.log(info.refusal.reason)
 * ```
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { WarrenError } from '../errors.ts'
import { escapeControl } from '../log.ts'
import { readAll } from '../p2p/read-all.ts'

/** Limits of a bounded reservation and of every circuit to it. */
export interface CircuitLimit {
  /** Bytes per relayed connection, both directions together. */
  dataBytes: number
  /** Seconds a relayed connection may stay open. */
  durationSec: number
}

export const RELAY_INFO_PROTOCOL = '/warren/relay/1.0.0'
const MAX_BYTES = 16 * 1024
const MAX_REQUEST_BYTES = 1024

export type RelayInfoIntent = 'info' | 'reserve'

export interface Refusal {
  kind: 'reservation' | 'circuit'
  /** What the relay refused and why, in words. */
  reason: string
  /** ms since the epoch. */
  at: number
}

export interface RelayInfo {
  relay: string
  /** The asking node, as the relay sees it. */
  node: string
  allowed: boolean
  private: boolean
  /** Limits of this node's reservation and of circuits to it; null when unlimited. */
  limits: CircuitLimit | null
  /** This node's reservation, if it holds one. */
  reservation: { expiresAt: number } | null
  /** Why a reservation of this node would be refused now; null when it would be granted. */
  wouldRefuse: string | null
  /** The latest refusal of this node, if any. */
  refusal: Refusal | null
  /** The relay's STUN responder (UDP port on the relay's own addresses), if it runs one. */
  stun: { port: number } | null
  /** How the node is allowed: on the allow list, by a token it presented, or not (null). Absent from older relays. */
  admission?: 'list' | 'token' | null
  /** Whether the token in the request was one of the relay's; absent when the request carried none. */
  token?: 'accepted' | 'refused'
}

/** What a node sends: its intent, and the relay's shared token when it has one (config `relayTokens`). */
export interface RelayInfoRequest {
  intent: RelayInfoIntent
  token?: string
}

/** Serves the protocol on a relay; `infoFor` builds the answer for the asking node, asking from `from`. */
export async function handleRelayInfo(
  libp2p: Libp2p,
  infoFor: (peer: PeerId, request: RelayInfoRequest, from: Multiaddr) => RelayInfo,
): Promise<void> {
  await libp2p.handle(
    RELAY_INFO_PROTOCOL,
    async (stream, connection) => {
      try {
        const request = await readAll(stream, AbortSignal.timeout(5_000), MAX_REQUEST_BYTES)
        const asked: RelayInfoRequest = { intent: 'info' }
        try {
          const json = JSON.parse(new TextDecoder().decode(request)) as { intent?: unknown; token?: unknown } | null
          if (json?.intent === 'reserve') asked.intent = 'reserve'
          if (typeof json?.token === 'string' && json.token !== '') asked.token = json.token
        } catch {
          // an empty or unreadable request asks for info
        }
        stream.send(
          new TextEncoder().encode(JSON.stringify(infoFor(connection.remotePeer, asked, connection.remoteAddr))),
        )
        await stream.close({ signal: AbortSignal.timeout(5_000) })
      } catch (err) {
        stream.abort(err as Error)
      }
    },
    { runOnLimitedConnection: false },
  )
}

function badAnswer(relay: PeerId, why: string): WarrenError {
  return new WarrenError('ERR_PROTOCOL', `relay ${relay} answered ${RELAY_INFO_PROTOCOL} wrongly: ${why}`, {
    hint: 'The relay may run another Warren version; upgrade the relay and this node.',
  })
}

/** Asks a relay (over an existing or new direct connection) what it grants this node. */
export async function queryRelayInfo(
  libp2p: Libp2p,
  relay: PeerId,
  opts: { signal?: AbortSignal; intent?: RelayInfoIntent; token?: string } = {},
): Promise<RelayInfo> {
  const signal = opts.signal ?? AbortSignal.timeout(5_000)
  const stream = await libp2p.dialProtocol(relay, RELAY_INFO_PROTOCOL, { signal })
  const reading = readAll(stream, signal, MAX_BYTES) // listen before anything else, so no byte of the answer is missed
  let data: Uint8Array
  try {
    const request: RelayInfoRequest = { intent: opts.intent ?? 'info' }
    if (opts.token !== undefined) request.token = opts.token
    stream.send(new TextEncoder().encode(JSON.stringify(request)))
    await stream.close({ signal })
    data = await reading
  } catch (err) {
    stream.abort(err as Error)
    throw badAnswer(relay, (err as Error).message)
  }
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(data))
  } catch {
    throw badAnswer(relay, 'not JSON')
  }
  const info = infoSchema.safeParse(json)
  if (!info.success) {
    const issue = info.error.issues[0]!
    throw badAnswer(relay, issue.path.length === 0 ? 'not an object' : `"${issue.path.join('.')}": ${issue.message}`)
  }
  return info.data as RelayInfo
}

// what a node takes from a relay's answer: every field typed (a relay is not trusted with more than its own answer),
// those older relays leave out defaulted, and fields it does not know dropped
// a reason is quoted in errors, logs and `warren status`: one line, its control characters escaped
const reason = z.string().max(2048).transform(escapeControl)
const infoSchema = z.object({
  relay: z.string().max(256).default(''),
  node: z.string().max(256).default(''),
  allowed: z.boolean(),
  private: z.boolean().default(false),
  limits: z
    .object({ dataBytes: z.number().nonnegative(), durationSec: z.number().nonnegative() })
    .nullable()
    .default(null),
  reservation: z.object({ expiresAt: z.number() }).nullable().optional(),
  wouldRefuse: reason.nullable().default(null),
  refusal: z
    .object({ kind: z.enum(['reservation', 'circuit']), reason, at: z.number() })
    .nullable()
    .default(null),
  stun: z
    .object({ port: z.number().int().min(1).max(65535) })
    .nullable()
    .default(null),
  admission: z.enum(['list', 'token']).nullable().optional(),
  token: z.enum(['accepted', 'refused']).optional(),
})
