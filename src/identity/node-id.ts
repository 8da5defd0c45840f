/**
 * Node ids: the libp2p PeerId of a node's Ed25519 key.
 *
 * Printed in base58 (`12D3KooW…`); the base36 CIDv1 form (`k51qzi5uqu5…`, 62 characters, a valid DNS label)
 * is accepted everywhere too and used in hostnames.
 *
 * @example
 * ```ts
 * const id = parseNodeId('k51qzi5uqu5…')
 * formatNodeId(id)        // '12D3KooW…'
 * formatNodeIdBase36(id)  // 'k51qzi5uqu5…'
 * ```
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { base36 } from 'multiformats/bases/base36'
import { WarrenError } from '../errors.ts'

const BASE58_PREFIX = '12D3KooW'
const BASE36_PREFIX = 'k51qzi5uqu5'

/** True when `text` looks like a node id (either form); it may still fail to parse. */
export function looksLikeNodeId(text: string): boolean {
  return text.startsWith(BASE58_PREFIX) || text.toLowerCase().startsWith(BASE36_PREFIX)
}

/** Parses a base58 or base36 Ed25519 node id, or throws ERR_BAD_NODE_ID saying what is wrong. */
export function parseNodeId(text: string): PeerId {
  const trimmed = text.trim()
  const candidate = trimmed.toLowerCase().startsWith(BASE36_PREFIX) ? trimmed.toLowerCase() : trimmed
  const shown = trimmed.length > 80 ? `${trimmed.slice(0, 77)}...` : trimmed
  if (trimmed === '') {
    throw new WarrenError('ERR_BAD_NODE_ID', 'node id is empty', {
      hint: 'Give a node id such as 12D3KooW… (see `warren id` on that node).',
    })
  }
  if (!looksLikeNodeId(trimmed)) {
    throw new WarrenError(
      'ERR_BAD_NODE_ID',
      `"${shown}" is not a node id: it does not start with 12D3KooW (base58) or k51qzi5uqu5 (base36)`,
      {
        hint: 'Use the id printed by `warren id` on that node, or an alias from `peers`.',
        details: { input: shown },
      },
    )
  }
  const isBase36 = candidate.startsWith(BASE36_PREFIX)
  const want = isBase36 ? 62 : 52
  if (candidate.length !== want) {
    throw new WarrenError(
      'ERR_BAD_NODE_ID',
      `"${shown}" is not a valid node id: it has ${candidate.length} characters, a ${isBase36 ? 'base36' : 'base58'} node id has ${want}`,
      {
        hint: `It looks ${candidate.length < want ? 'truncated' : 'longer than an id'}; copy it again from \`warren id\` on that node.`,
        details: { input: shown },
      },
    )
  }
  const alphabet = isBase36 ? /[^0-9a-z]/ : /[^1-9A-HJ-NP-Za-km-z]/
  const stray = alphabet.exec(candidate)
  if (stray !== null) {
    const rule = isBase36 ? 'base36 uses only 0-9 and a-z' : 'base58 leaves out 0, O, I and l'
    throw new WarrenError(
      'ERR_BAD_NODE_ID',
      `"${shown}" is not a valid node id: ${JSON.stringify(stray[0])} at position ${stray.index + 1} is not a ${isBase36 ? 'base36' : 'base58'} character (${rule})`,
      { hint: 'A character was mistyped; copy the id again from `warren id` on that node.', details: { input: shown } },
    )
  }
  let id: PeerId
  try {
    id = peerIdFromString(candidate)
  } catch (err) {
    throw new WarrenError('ERR_BAD_NODE_ID', `"${shown}" is not a valid node id: it does not decode to a peer id`, {
      hint: 'A node id is 52 characters starting 12D3KooW, or 62 starting k51qzi5uqu5; check for a truncated copy.',
      details: { input: shown },
      cause: err,
    })
  }
  if (id.type !== 'Ed25519') {
    throw new WarrenError('ERR_BAD_NODE_ID', `"${shown}" is a ${id.type} peer id; Warren node ids are Ed25519 keys`, {
      hint: 'Use the id printed by `warren id` on the node.',
      details: { input: shown, type: id.type },
    })
  }
  return id
}

/** The base58 form, `12D3KooW…`. */
export function formatNodeId(id: PeerId): string {
  return id.toString()
}

/** The base36 CIDv1 form, `k51qzi5uqu5…`: 62 lowercase characters, usable as a DNS label. */
export function formatNodeIdBase36(id: PeerId): string {
  return id.toCID().toString(base36)
}

/** A short form for logs and tables: the last 6 characters of the base58 id. */
export function shortNodeId(id: PeerId | string): string {
  const s = typeof id === 'string' ? id : id.toString()
  return `…${s.slice(-6)}`
}
