/**
 * `/warren/relay/admits/1.0.0`: a node tells a Warren relay which nodes it admits to its services, so that the relay
 * gives a circuit from one of them to this node the limits of the relay's own members (none) instead of the limits
 * for strangers. A browser has no direct path, so its circuit carries the whole of what it fetches; without this,
 * the stranger data and time limits would cut it.
 *
 * The node sends one JSON object, `{"any":false,"ids":["12D3KooW…",…]}` (`any`: a service of the node is public),
 * and closes its side; the relay answers `{"accepted":true,"ids":<n>}`, or `{"accepted":false,"reason":"…"}` when it
 * does not take declarations from this node (only its allowed members count: a stranger cannot lift the limits of
 * circuits to itself), and closes. A later declaration replaces the earlier one; the relay forgets a node's
 * declaration when the node's last connection to it closes.
 *
 * @example
 * ```ts
 * const answer = await declareAdmits(libp2p, relayPeerId, { any: false, ids: ['12D3KooW…'] })
 * ```
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import { z } from 'zod'
import { WarrenError } from '../errors.ts'
import { escapeControl } from '../log.ts'
import { readAll } from '../p2p/read-all.ts'

export const RELAY_ADMITS_PROTOCOL = '/warren/relay/admits/1.0.0'
/** Node ids one declaration carries at most; a node that names more declares the first ones. */
export const MAX_ADMITS = 4_096
/** 4096 base58 node ids (52 characters) with their JSON quoting, and room for the rest. */
const MAX_REQUEST_BYTES = 256 * 1024
const MAX_ANSWER_BYTES = 4 * 1024

export interface AdmitsDeclaration {
  /** The node admits every node to some service (a service with `allow: ["*"]`). */
  any: boolean
  /** Node ids (base58) the node admits. */
  ids: string[]
}

export type AdmitsAnswer = { accepted: true; ids: number } | { accepted: false; reason: string }

/** Parses a declaration; throws why it is not one. Ids are kept as strings: the relay compares them as given. */
export function parseDeclaration(bytes: Uint8Array): AdmitsDeclaration {
  const json = JSON.parse(new TextDecoder().decode(bytes)) as { any?: unknown; ids?: unknown } | null
  if (json === null || typeof json !== 'object') throw new Error('not a JSON object')
  if (typeof json.any !== 'boolean') throw new Error('"any" is not true or false')
  if (!Array.isArray(json.ids) || !json.ids.every((i) => typeof i === 'string' && i.length > 0 && i.length <= 128)) {
    throw new Error('"ids" is not a list of node ids')
  }
  if (json.ids.length > MAX_ADMITS) throw new Error(`"ids" names more than ${MAX_ADMITS} nodes`)
  return { any: json.any, ids: json.ids as string[] }
}

/**
 * Serves the protocol on a relay. `refusal` says up front why `peer`'s declaration would not count (then the relay
 * answers at once without reading it); `onDeclare` takes the declaration and says whether it took it.
 */
export async function handleRelayAdmits(
  libp2p: Libp2p,
  refusal: (peer: PeerId) => string | undefined,
  onDeclare: (peer: PeerId, declaration: AdmitsDeclaration) => AdmitsAnswer,
): Promise<void> {
  await libp2p.handle(
    RELAY_ADMITS_PROTOCOL,
    async (stream, connection) => {
      try {
        let answer: AdmitsAnswer
        const refused = refusal(connection.remotePeer)
        if (refused !== undefined) answer = { accepted: false, reason: refused }
        else {
          const bytes = await readAll(stream, AbortSignal.timeout(5_000), MAX_REQUEST_BYTES)
          try {
            answer = onDeclare(connection.remotePeer, parseDeclaration(bytes))
          } catch (err) {
            answer = { accepted: false, reason: `the declaration is malformed: ${(err as Error).message}` }
          }
        }
        stream.send(new TextEncoder().encode(JSON.stringify(answer)))
        await stream.close({ signal: AbortSignal.timeout(5_000) })
      } catch (err) {
        stream.abort(err as Error)
      }
    },
    { runOnLimitedConnection: false },
  )
}

/** Sends this node's declaration to a relay it is connected to; resolves with the relay's answer. */
export async function declareAdmits(
  libp2p: Libp2p,
  relay: PeerId,
  declaration: AdmitsDeclaration,
  opts: { signal?: AbortSignal } = {},
): Promise<AdmitsAnswer> {
  const signal = opts.signal ?? AbortSignal.timeout(5_000)
  // optimistic protocol select: the declaration leaves with the protocol name, ahead of whatever this node sends next
  const stream = await libp2p.dialProtocol(relay, RELAY_ADMITS_PROTOCOL, { signal, negotiateFully: false })
  const reading = readAll(stream, signal, MAX_ANSWER_BYTES)
  let data: Uint8Array
  try {
    stream.send(new TextEncoder().encode(JSON.stringify(declaration)))
    await stream.close({ signal })
    data = await reading
  } catch (err) {
    stream.abort(err as Error)
    throw new WarrenError(
      'ERR_PROTOCOL',
      `relay ${relay} did not answer ${RELAY_ADMITS_PROTOCOL}: ${(err as Error).message}`,
      {
        hint: 'The relay may run another Warren version; upgrade the relay and this node.',
      },
    )
  }
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(data))
  } catch {
    // reported below
  }
  const answer = answerSchema.safeParse(json)
  if (!answer.success) {
    throw new WarrenError(
      'ERR_PROTOCOL',
      `relay ${relay} answered ${RELAY_ADMITS_PROTOCOL} wrongly: not {"accepted":true,"ids":<n>} or {"accepted":false,"reason":"…"}`,
      {
        hint: 'The relay may run another Warren version; upgrade the relay and this node.',
      },
    )
  }
  return answer.data
}

const answerSchema = z.union([
  z.object({ accepted: z.literal(true), ids: z.number().int().nonnegative() }),
  z.object({ accepted: z.literal(false), reason: z.string().max(2048).transform(escapeControl) }),
])
