/**
 * The relay's own settings: `relay.json` in the relay home, overridden by `warren relay` flags. One schema gives the
 * types, the defaults and the validation; see docs/relay.md for every key.
 *
 * @example
 * ```json
 * {
 *   "listen": ["/ip4/0.0.0.0/tcp/4001"],
 *   "ws": { "port": 4002 },
 *   "allow": ["12D3KooW…"],
 *   "limits": { "dataBytes": 1048576, "durationSec": 120, "maxCircuitsPerNode": 16 }
 * }
 * ```
 */
import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { listenAddressProblem } from '../../config/listen-address.ts'
import { multiaddrString, problemOf } from '../../config/schema.ts'
import { WarrenError } from '../../errors.ts'
import { parseNodeId } from '../../identity/node-id.ts'
import { PRESETS } from '../../p2p/presets.ts'
import { DEFAULT_MAX_RECORDS } from '../../p2p/record-store.ts'

/** Node ids in either form; stored in base58 so that lookups compare one form. */
const nodeIdString = z
  .string()
  .superRefine((s, ctx) => {
    const p = problemOf(() => parseNodeId(s))
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p })
  })
  .transform((s) => {
    try {
      return parseNodeId(s).toString()
    } catch {
      return s
    }
  })

const port = (min: number) => z.number().int().min(min).max(65_535)
/** A DNS name (letters, digits and hyphens in dot-separated labels), as `behindProxy.host` and `web.domain` take. */
export const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i

/** The bounds of `maxConnections`. */
export const MIN_CONNECTIONS = 16
export const MAX_CONNECTIONS = 1_000_000

export const DEFAULT_LIMITS = {
  maxReservations: 128,
  maxReservationsPerIp: 4,
  maxConnectionsPerIp: 128,
  maxCircuits: 512,
  maxCircuitsPerNode: 16,
  reservationTtlSec: 3_600,
  dataBytes: 1_048_576,
  durationSec: 120,
} as const

export const relayConfigSchema = z
  .strictObject({
    /** TCP (or any) listen multiaddrs. */
    listen: z.array(multiaddrString).default(['/ip4/0.0.0.0/tcp/4001']),
    /** Extra addresses to announce besides the listen addresses (a public address behind port forwarding). */
    announce: z.array(multiaddrString).default([]),
    /** WebSocket listener; with `cert` and `key` (PEM files) it is WSS (`/tls/ws`). */
    ws: z
      .strictObject({
        port: port(0),
        /** Absent: 0.0.0.0, or 127.0.0.1 with `behindProxy`. */
        host: z.string().min(1).optional(),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
      })
      .optional(),
    /** A TLS-terminating reverse proxy forwards `wss://<host>:<port>` to the `ws` port; announced as /wss. */
    behindProxy: z
      .strictObject({
        host: z.string().regex(HOSTNAME, 'is not a DNS name such as relay.example.net'),
        port: port(1).default(443),
      })
      .optional(),
    /** STUN binding responder (UDP) so nodes learn their public UDP address; `false` turns it off. */
    stun: z
      .union([
        z.literal(false),
        z.strictObject({ port: port(0).default(3478), host: z.string().min(1).default('0.0.0.0') }),
      ])
      .default({ port: 3478, host: '0.0.0.0' }),
    /** Private relay: only nodes in `allow` get reservations. */
    private: z.boolean().default(false),
    /** Node ids with unlimited reservations and circuits, exempt from the caps. */
    allow: z.array(nodeIdString).default([]),
    /**
     * Shared secrets: a node that presents one (config `relayTokens` on the node) is treated as if on `allow`. For a
     * household or team sharing one relay without collecting node ids.
     */
    tokens: z
      .array(
        z
          .string()
          .min(16, 'is shorter than 16 characters: use a long random secret, e.g. from `openssl rand -hex 16`')
          .max(256, 'is longer than 256 characters'),
      )
      .default([]),
    limits: z
      .strictObject({
        /** Reservations held at once by nodes not in `allow`. */
        maxReservations: z.number().int().min(0).max(1_000_000).default(DEFAULT_LIMITS.maxReservations),
        /** Of those, reservations held at once from one IP address (IPv6: one /64). */
        maxReservationsPerIp: z.number().int().min(1).max(1_000_000).default(DEFAULT_LIMITS.maxReservationsPerIp),
        /**
         * Connections open at once from one IP address (IPv6: one /64) of nodes not in `allow`, reservations or not;
         * clients through the reverse proxy (`behindProxy`) are not counted per address.
         */
        maxConnectionsPerIp: z.number().int().min(1).max(1_000_000).default(DEFAULT_LIMITS.maxConnectionsPerIp),
        /** Relayed connections open at once, all nodes together (circuits asked for by allowed nodes always pass). */
        maxCircuits: z.number().int().min(1).max(1_000_000).default(DEFAULT_LIMITS.maxCircuits),
        /** Relayed connections open at once involving one node that is not in `allow`. */
        maxCircuitsPerNode: z.number().int().min(1).max(1_000_000).default(DEFAULT_LIMITS.maxCircuitsPerNode),
        /** How long a reservation lasts before the node must renew it, seconds. */
        reservationTtlSec: z.number().int().min(1).max(86_400).default(DEFAULT_LIMITS.reservationTtlSec),
        /** Bytes one relayed connection to a node not in `allow` may carry (both directions together). */
        dataBytes: z.number().int().min(1_024).max(Number.MAX_SAFE_INTEGER).default(DEFAULT_LIMITS.dataBytes),
        /** Seconds one relayed connection to a node not in `allow` may stay open. */
        durationSec: z.number().int().min(1).max(86_400).default(DEFAULT_LIMITS.durationSec),
      })
      .default({ ...DEFAULT_LIMITS }),
    /**
     * Connections the relay keeps open at once (every reservation holds one; nodes also connect for circuits, identify
     * and the DHT); past it new connections are refused. Each needs a file descriptor: `ulimit -n` must exceed it.
     * Takes a restart.
     */
    maxConnections: z.number().int().min(MIN_CONNECTIONS).max(MAX_CONNECTIONS).default(PRESETS.relay.maxConnections),
    api: z.strictObject({ socket: z.string().min(1).default('relay.sock') }).default({ socket: 'relay.sock' }),
    /** The relay as a DHT server (always on: relays are the bootstrap nodes of Warren's DHT); see docs/discovery.md. */
    discovery: z
      .strictObject({
        /** Keep private addresses (loopback, RFC 1918, 198.18/15 …) in DHT answers: a LAN or lab network only. */
        privateAddresses: z.boolean().default(false),
        /** Other relays (DHT servers) to join, multiaddrs ending in /p2p/<id>, so that one DHT spans them all. */
        bootstrap: z
          .array(
            multiaddrString.refine((s) => !s.startsWith('/') || /\/p2p\/[^/]+$/.test(s), {
              message: 'does not end with /p2p/<relay id>: copy the address from `warren relay status` on that relay',
            }),
          )
          .default([]),
        /** DHT records kept at most; past it, storing one evicts the one stored longest ago (src/p2p/record-store.ts). */
        maxRecords: z.number().int().min(1).max(10_000_000).default(DEFAULT_MAX_RECORDS),
      })
      .default({ privateAddresses: false, bootstrap: [], maxRecords: DEFAULT_MAX_RECORDS }),
    /**
     * The Warren web app (a page plus a Service Worker) served beside the relay, so that a browser opens
     * `https://<relay>/#<ticket>/<service>` with nothing installed; HTTPS with the `ws` certificate. Absent: off.
     */
    web: z
      .strictObject({
        /** Absent: 8443 with a certificate, else 8080. */
        port: port(0).optional(),
        /** Absent: 0.0.0.0, or 127.0.0.1 with `behindProxy`. */
        host: z.string().min(1).optional(),
        /** The relay's public DNS name: the page dials the relay's WebSocket at this name (else the name it was opened by). */
        domain: z.string().regex(HOSTNAME, 'is not a DNS name such as relay.example.net').optional(),
        /** Where the built web app is (app.js, sw.js, warren.js); absent: dist/browser of this package. */
        dir: z.string().min(1).optional(),
      })
      .optional(),
    /**
     * Prometheus metrics (`GET /metrics`: reservations, circuits, bytes, ends by cause, refusals) on this HTTP
     * `host:port` (a bare port means 127.0.0.1); see src/relay/server/metrics.ts. Absent: off.
     */
    metrics: z
      .strictObject({
        listen: z.string().superRefine((s, ctx) => {
          const p = listenAddressProblem(s)
          if (p !== undefined) ctx.addIssue({ code: 'custom', message: `is not a listen address: ${p}` })
        }),
      })
      .optional(),
    /** Delegated Routing V1 HTTP API (`GET /routing/v1/peers/<id>`) for browsers; absent: off. */
    routing: z
      .strictObject({
        port: port(0),
        host: z.string().min(1).default('0.0.0.0'),
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    if (c.limits.maxReservations > c.maxConnections) {
      ctx.addIssue({
        code: 'custom',
        path: ['limits', 'maxReservations'],
        message:
          `is ${c.limits.maxReservations}, more than maxConnections (${c.maxConnections}): each reservation holds ` +
          `a connection to the relay; raise maxConnections (--max-connections) to at least ${c.limits.maxReservations}`,
      })
    }
    if (c.ws !== undefined && (c.ws.cert === undefined) !== (c.ws.key === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['ws', c.ws.cert === undefined ? 'cert' : 'key'],
        message: 'is missing: WSS needs both a certificate and its private key (PEM files)',
      })
    }
    if (c.behindProxy !== undefined && c.ws === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['behindProxy'],
        message: 'needs a WebSocket port for the proxy to forward to (set "ws": { "port": 4002 } or pass --ws 4002)',
      })
    }
    if (c.web !== undefined && c.ws === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['web'],
        message:
          'needs a WebSocket port for the page to reach the relay (set "ws": { "port": 4002 } or pass --ws 4002)',
      })
    }
    if (c.behindProxy !== undefined && c.ws?.cert !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['ws', 'cert'],
        message: 'must be absent behind a proxy: the proxy terminates TLS, so the WebSocket port speaks plain ws',
      })
    }
  })

/** Validated relay settings with every default filled in. */
export type RelayConfig = z.output<typeof relayConfigSchema>
/** What relay.json (or the flags) may hold. */
export type RelayConfigInput = z.input<typeof relayConfigSchema>
export type RelayLimits = RelayConfig['limits']

function pathOf(path: readonly PropertyKey[]): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
    .join('')
    .replace(/^\./, '')
}

/** Validates relay settings; throws ERR_CONFIG_INVALID listing every problem with its field. */
export function validateRelayConfig(input: unknown, source = 'relay settings'): RelayConfig {
  const r = relayConfigSchema.safeParse(input)
  if (r.success) return r.data
  const problems = r.error.issues.map((i) => {
    const where = pathOf(i.path) || '(top level)'
    if (i.code === 'unrecognized_keys') return `${where}: unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`
    return `${where}: ${i.message}`
  })
  throw new WarrenError('ERR_CONFIG_INVALID', `${source} are invalid:\n  ${problems.join('\n  ')}`, {
    hint: 'Fix the fields named above in relay.json or the matching flags; docs/relay.md describes every key.',
    details: { problems },
  })
}

/** Reads relay.json; a missing file means "all defaults" (a relay runs without one). */
export async function readRelayConfigFile(path: string): Promise<RelayConfigInput> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
  try {
    return JSON.parse(text) as RelayConfigInput
  } catch (err) {
    throw new WarrenError('ERR_CONFIG_PARSE', `${path} is not valid JSON: ${(err as Error).message}`, {
      hint: 'Fix the JSON syntax (no comments or trailing commas).',
      details: { path },
    })
  }
}
