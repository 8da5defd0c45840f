/**
 * Every error Warren raises on purpose is a {@link WarrenError} with a stable `code`.
 *
 * Codes never change meaning once released; `docs/errors.md` lists each one with what to do,
 * and a test keeps that page and this table in step.
 *
 * @example
 * ```ts
 * try { await client.forwardAdd({ node, service, listen }) }
 * catch (err) { if (isWarrenError(err, 'ERR_NOT_AUTHORIZED')) console.error(err.hint) }
 * ```
 *
 * @packageDocumentation
 */

/** What each code means, the usual fix, and the CLI exit status it maps to. */
export const ERROR_CODES = {
  ERR_USAGE: { exit: 2, summary: 'A command was called with missing or malformed arguments.' },
  ERR_HOME_NOT_INITIALIZED: { exit: 3, summary: 'The Warren home has no key or config yet.' },
  ERR_HOME_EXISTS: { exit: 3, summary: 'init would overwrite an existing key or config.' },
  ERR_KEY_PERMISSIONS: { exit: 3, summary: 'The private key file is readable or writable by other users.' },
  ERR_KEY_INVALID: { exit: 3, summary: 'The private key file is not a valid Ed25519 key.' },
  ERR_CONFIG_INVALID: { exit: 3, summary: 'config.json does not match the schema.' },
  ERR_CONFIG_PARSE: { exit: 3, summary: 'config.json is not valid JSON.' },
  ERR_BAD_NODE_ID: { exit: 2, summary: 'A node id is neither a base58 nor a base36 Ed25519 peer id.' },
  ERR_BAD_TICKET: { exit: 2, summary: 'A ticket is truncated, mistyped or of an unknown version.' },
  ERR_BAD_TARGET: { exit: 2, summary: 'A service target is not a usable TCP multiaddr.' },
  ERR_BAD_ADDRESS: { exit: 2, summary: 'A listen or peer address is malformed.' },
  ERR_UNKNOWN_PEER: { exit: 4, summary: 'A name is neither a node id, a ticket nor an alias in `peers`.' },
  ERR_NO_ADDRESSES: { exit: 4, summary: 'The node id is valid but no address for it is known.' },
  ERR_UNKNOWN_ADDRESSES: {
    exit: 4,
    summary: 'A ticket or address names addresses this node does not know, where new addresses are not allowed.',
  },
  ERR_LOOKUP_FAILED: {
    exit: 4,
    summary: 'No discovery source (cache, peers/tickets, mDNS, DHT) found an address for the node id in time.',
  },
  ERR_DIAL_FAILED: { exit: 5, summary: 'No connection could be made to the node.' },
  ERR_UNKNOWN_SERVICE: { exit: 5, summary: 'The remote node has no service of that name.' },
  ERR_NOT_AUTHORIZED: { exit: 5, summary: 'The remote node does not allow this node to use the service.' },
  ERR_TARGET_UNREACHABLE: { exit: 5, summary: "The remote node could not connect to the service's TCP target." },
  ERR_OVERLOADED: { exit: 5, summary: 'The remote node refused the stream because it is at its limit.' },
  ERR_PROTOCOL: { exit: 5, summary: 'The peer spoke the service protocol wrongly or in an unsupported version.' },
  ERR_TIMEOUT: { exit: 5, summary: 'An operation did not finish in time.' },
  ERR_STREAM_ABORTED: {
    exit: 5,
    summary:
      'A stream ended with an error before every byte was delivered: the far side reset it, its connection was lost, or a relay limit cut it.',
  },
  ERR_NOT_WARREN_NAME: {
    exit: 2,
    summary: 'A host name outside the .warren domain was sent to the access port, which is not an open proxy.',
  },
  ERR_BAD_NAME: { exit: 2, summary: 'A .warren host name does not have the shape Warren expects.' },
  ERR_BAD_REQUEST: {
    exit: 2,
    summary:
      'The access port could not use a request: not HTTP/1.1, a CONNECT target that is not host:port, or a proxy URL that is invalid or not http://.',
  },
  ERR_BAD_GATEWAY_PATH: {
    exit: 2,
    summary: 'A gateway path is not /http/<node>/<service>/… or /p2p/<node>/x/<service>/http/….',
  },
  ERR_GATEWAY_DISABLED: { exit: 5, summary: 'The HTTP gateway is turned off on this node (gateway.enabled is false).' },
  ERR_NO_SUCH_PAGE: {
    exit: 2,
    summary: 'The access port has no page at that path (it serves the gateway paths and /proxy.pac).',
  },
  ERR_HOST_NOT_SERVED: {
    exit: 5,
    summary: 'The access port was asked for a host name it does not serve (a DNS rebinding defence).',
  },
  ERR_CROSS_ORIGIN: {
    exit: 5,
    summary: 'A browser request from another site or origin was refused by the gateway.',
  },
  ERR_PROXY_AUTH: { exit: 5, summary: 'The access port asked for proxy credentials and got none or wrong ones.' },
  ERR_HEADERS_TOO_LARGE: {
    exit: 5,
    summary: 'An HTTP request or response head is larger than the access port allows.',
  },
  ERR_TOO_MANY_STREAMS: {
    exit: 5,
    summary: 'This node already has its limit of streams open to that node (access port, or per connection).',
  },
  ERR_FILE_LIMIT: {
    exit: 6,
    summary: 'This process is at its open-file limit (ulimit -n): a new local connection was refused at once.',
  },
  ERR_RPC_UNKNOWN_METHOD: { exit: 5, summary: 'The remote node has no RPC method of that name (JSON-RPC -32601).' },
  ERR_RPC_REFUSED: {
    exit: 5,
    summary: 'The remote node does not allow this node to call that RPC method (rpc.allow, JSON-RPC -32001).',
  },
  ERR_RPC_BAD_PARAMS: {
    exit: 5,
    summary: 'An RPC method refused its params (JSON-RPC -32602), or they cannot be sent as JSON.',
  },
  ERR_RPC_TOO_LARGE: { exit: 5, summary: 'An RPC request or answer is over the size limit (JSON-RPC -32003).' },
  ERR_RPC_FAILED: { exit: 5, summary: 'An RPC method failed on the remote node without saying why (JSON-RPC -32603).' },
  ERR_RPC_NAME: { exit: 2, summary: 'An RPC method name is malformed, reserved (starts with "_") or taken.' },
  ERR_INVITE_INVALID: {
    exit: 5,
    summary: 'An invite code is not one the node made for that service (mistyped, forged, or for another service).',
  },
  ERR_INVITE_EXPIRED: { exit: 5, summary: 'An invite code was valid but its time ran out before it was redeemed.' },
  ERR_INVITE_USED: { exit: 5, summary: 'An invite code was already redeemed by another node; each works once.' },
  ERR_INVITE_RATE_LIMITED: {
    exit: 5,
    summary: 'The node refuses invite codes from this node for a while after too many failed attempts.',
  },
  ERR_INVITE_NOT_FOUND: { exit: 6, summary: 'No invite with that id is kept on this node (`warren invite --revoke`).' },
  ERR_SERVICE_EXISTS: { exit: 6, summary: 'A service of that name is already exposed.' },
  ERR_SERVICE_NOT_FOUND: { exit: 6, summary: 'No local service of that name is exposed.' },
  ERR_FORWARD_EXISTS: { exit: 6, summary: 'A forward already listens on that address.' },
  ERR_FORWARD_NOT_FOUND: { exit: 6, summary: 'No forward listens on that address.' },
  ERR_LISTEN_FAILED: { exit: 6, summary: 'A local listener could not be opened (address in use, no permission).' },
  ERR_DAEMON_NOT_RUNNING: { exit: 7, summary: 'No daemon is running for this Warren home.' },
  ERR_DAEMON_RUNNING: { exit: 7, summary: 'A daemon is already running for this Warren home.' },
  ERR_UNIT_EXISTS: { exit: 6, summary: '`warren service install` would replace an existing systemd unit file.' },
  ERR_API: { exit: 7, summary: 'The local API answered with an error that has no more specific code.' },
  ERR_NO_DIRECT_PATH: { exit: 5, summary: 'Hole punching found no direct path; the relayed connection stays in use.' },
  ERR_PORT_MAPPING: {
    exit: 5,
    summary: 'The router did not map a port (PCP, NAT-PMP, UPnP IGD): no answer, a refusal, or a malformed answer.',
  },
  ERR_RELAY_REFUSED: {
    exit: 5,
    summary: 'A relay refused a reservation or a relayed connection (private relay, not allowed, or a cap reached).',
  },
  ERR_RELAY_UNREACHABLE: { exit: 5, summary: 'None of the relays in `relays` could be reached or reserved on.' },
  ERR_LAB: {
    exit: 8,
    summary: 'The network-namespace NAT lab could not be built or used (needs root, iproute2, nftables).',
  },
  ERR_TRANSPARENT_PRIVILEGE: {
    exit: 6,
    summary:
      'Transparent mode needs CAP_NET_ADMIN (root, or setcap on the Node binary) to add its routes and nftables rules.',
  },
  ERR_TRANSPARENT_IN_USE: {
    exit: 6,
    summary: 'Another running daemon on this host already captures the service addresses (transparent mode).',
  },
  ERR_TRANSPARENT_RANGE: {
    exit: 3,
    summary: 'A transparent-mode address range is malformed or overlaps a route that already exists on this host.',
  },
  ERR_TRANSPARENT_SETUP: {
    exit: 6,
    summary: 'Transparent mode could not be set up (not Linux, nft or ip missing, or a command failed).',
  },
  ERR_INTERNAL: { exit: 70, summary: 'A bug: Warren hit a state it does not expect.' },
} as const

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_CODES

export interface WarrenErrorOptions {
  /** What the user can do about it, one sentence. */
  hint?: string
  /** Machine-readable context (field path, peer id, target …). */
  details?: Record<string, unknown>
  cause?: unknown
}

/** The shape an error takes in JSON (API responses, `--json` output). */
export interface WarrenErrorJSON {
  code: ErrorCode
  message: string
  hint?: string
  details?: Record<string, unknown>
}

export class WarrenError extends Error {
  override name = 'WarrenError'
  readonly code: ErrorCode
  readonly hint?: string
  readonly details?: Record<string, unknown>

  constructor(code: ErrorCode, message: string, options: WarrenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options.hint !== undefined) this.hint = options.hint
    if (options.details !== undefined) this.details = options.details
  }

  /** CLI exit status for this error. */
  get exitCode(): number {
    return ERROR_CODES[this.code].exit
  }

  toJSON(): WarrenErrorJSON {
    const out: WarrenErrorJSON = { code: this.code, message: this.message }
    if (this.hint !== undefined) out.hint = this.hint
    if (this.details !== undefined) out.details = this.details
    return out
  }

  /** Rebuilds an error sent over the local API; unknown codes become ERR_API. */
  static fromJSON(json: { code?: unknown; message?: unknown; hint?: unknown; details?: unknown }): WarrenError {
    const code = typeof json.code === 'string' && json.code in ERROR_CODES ? (json.code as ErrorCode) : 'ERR_API'
    const opts: WarrenErrorOptions = {}
    if (typeof json.hint === 'string') opts.hint = json.hint
    if (json.details !== null && typeof json.details === 'object')
      opts.details = json.details as Record<string, unknown>
    return new WarrenError(code, typeof json.message === 'string' ? json.message : 'unknown error', opts)
  }
}

/** True when `err` is a WarrenError, optionally of one code. */
export function isWarrenError(err: unknown, code?: ErrorCode): err is WarrenError {
  return err instanceof WarrenError && (code === undefined || err.code === code)
}

/** Wraps anything thrown into a WarrenError (ERR_INTERNAL when it is not one already). */
export function toWarrenError(err: unknown): WarrenError {
  if (err instanceof WarrenError) return err
  const message = err instanceof Error ? err.message : String(err)
  return new WarrenError('ERR_INTERNAL', message, { cause: err })
}
