/**
 * Warren's built-in RPC methods (docs/rpc.md):
 * - `_ping`: answers at once with the path the connection takes as this node sees it; the caller times the round trip.
 * - `_info`: version, node id, uptime, the protocols it speaks and the methods this caller may call.
 * - `_services`: the services this caller may use, with their type and description; never the targets.
 */

import { z } from 'zod'
import { LABEL } from '../config/schema.ts'
import { WarrenError } from '../errors.ts'
import { describePath, type PathInfo } from '../p2p/path.ts'
import type { RpcMethods } from './methods.ts'

/** A service as `_services` shows it to a caller. */
export interface RpcServiceInfo {
  name: string
  /** How the service is carried: raw TCP, or HTTP (the host adds `X-Warren-Peer`). */
  type: 'tcp' | 'http'
  description?: string
}

const servicesSchema = z.array(
  z.object({
    name: z.string().regex(LABEL, 'is not a service name'),
    type: z.enum(['tcp', 'http']),
    description: z.string().max(200).optional(),
  }),
)

/**
 * `_services`'s result as another node sent it, checked: a list of services with a DNS-label name, a type and at
 * most 200 characters of description (what the answering node's config allows). Anything else is ERR_PROTOCOL.
 */
export function servicesAnswer(node: string, result: unknown): RpcServiceInfo[] {
  const r = servicesSchema.safeParse(result)
  if (r.success) return r.data
  const issue = r.error.issues[0]!
  const where = issue.path.length === 0 ? '' : `${issue.path.join('.')}: `
  throw new WarrenError('ERR_PROTOCOL', `node ${node} answered _services wrongly: ${where}${issue.message}`, {
    hint: 'The node may run another Warren version; upgrade both.',
  })
}

export interface PingAnswer {
  pong: true
  /** The connection's path as the answering node sees it. */
  path: PathInfo
}

export interface InfoAnswer {
  id: string
  version: string
  uptimeMs: number
  protocols: string[]
  /** The methods the caller may call. */
  methods: string[]
}

/** What the built-ins need to know about the node that answers. */
export interface NodeFacts {
  id: string
  version: string
  startedAt: number
  protocols(): string[]
  /** The services `caller` (base58 id) may use. */
  servicesFor(caller: string): RpcServiceInfo[]
}

function noParams(method: string, params: unknown): void {
  const empty =
    params === undefined ||
    (Array.isArray(params) && params.length === 0) ||
    (typeof params === 'object' && params !== null && Object.keys(params).length === 0)
  if (!empty) throw new WarrenError('ERR_RPC_BAD_PARAMS', `${method} takes no params`)
}

export function registerBuiltins(methods: RpcMethods, facts: NodeFacts): void {
  methods.registerBuiltin('_ping', (params, { connection }): PingAnswer => {
    noParams('_ping', params)
    return { pong: true, path: describePath(connection) }
  })
  methods.registerBuiltin('_info', (params, { caller }): InfoAnswer => {
    noParams('_info', params)
    return {
      id: facts.id,
      version: facts.version,
      uptimeMs: Date.now() - facts.startedAt,
      protocols: facts.protocols(),
      methods: methods.namesFor(caller),
    }
  })
  methods.registerBuiltin('_services', (params, { caller }): RpcServiceInfo[] => {
    noParams('_services', params)
    return facts.servicesFor(caller)
  })
}
