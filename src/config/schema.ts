/**
 * The one schema for `config.json`: the TypeScript types, the defaults and the validation all come from here.
 *
 * @example
 * ```json
 * {
 *   "listen": ["/ip4/0.0.0.0/tcp/4781"],
 *   "peers": { "laptop": "12D3KooW…" },
 *   "services": { "web": "/tcp/8080", "db": { "target": "/ip4/10.0.0.4/tcp/5432", "allow": ["laptop"] } }
 * }
 * ```
 */
import { isIPv4, isIPv6 } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { looksLikeNodeId, parseNodeId } from '../identity/node-id.ts'
import { decodeTicket, looksLikeTicket } from '../identity/ticket.ts'
import { listenAddressProblem, parseListenAddress } from './listen-address.ts'
import { isLoopbackHost } from './loopback.ts'
import { targetProblem } from './target.ts'

/** A DNS label: service names and aliases appear in hostnames (`web.laptop.warren`). */
export const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const labelMessage = (what: string) =>
  `is not a valid ${what}: use 1-63 lowercase letters, digits and inner hyphens (it becomes part of a hostname)`

/** The message of what `fn` throws, or undefined when it does not throw. */
export function problemOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

const listenString = z.string().superRefine((s, ctx) => {
  const p = listenAddressProblem(s)
  if (p !== undefined) {
    ctx.addIssue({ code: 'custom', message: `is not a listen address: ${p}` })
  }
})

/** An IP prefix of one family with a prefix length in [min, max] (`transparent.ipv4Range`, `transparent.ipv6Range`). */
function cidrString(family: 4 | 6, min: number, max: number) {
  return z.string().superRefine((s, ctx) => {
    const [addr = '', len, ...rest] = s.split('/')
    const n = len !== undefined && /^\d{1,3}$/.test(len) ? Number(len) : Number.NaN
    const ok = rest.length === 0 && (family === 4 ? isIPv4(addr) : isIPv6(addr)) && n >= min && n <= max
    if (!ok) {
      const want = min === max ? `/${min}` : `/${min} to /${max}`
      ctx.addIssue({ code: 'custom', message: `is not an IPv${family} prefix ${want} (address/length)` })
    }
  })
}

/** A DNS host name the access port answers to (`proxy.hosts`), optionally with `:port`. */
const HOST_NAME =
  /^(?=.{1,253}(:|$))[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/
const hostString = z.string().superRefine((s, ctx) => {
  const port = s.includes(':') ? Number(s.slice(s.indexOf(':') + 1)) : 80
  if (!HOST_NAME.test(s) || port < 1 || port > 65_535) {
    ctx.addIssue({
      code: 'custom',
      message:
        'is not a host name: use lowercase DNS labels separated by dots, optionally with :port (warren.home.arpa:4780)',
    })
  }
})

/** The host of a valid listen address, or undefined (the address itself is reported by `listenString`). */
function listenHost(s: string | undefined): string | undefined {
  return s === undefined || listenAddressProblem(s) !== undefined ? undefined : parseListenAddress(s).host
}

export const multiaddrString = z.string().superRefine((s, ctx) => {
  const p = problemOf(() => multiaddr(s))
  if (p !== undefined) ctx.addIssue({ code: 'custom', message: `is not a valid multiaddr (${p})` })
})

/** A relay in `relays`: a multiaddr naming the relay with a trailing /p2p/<relay id>. */
const relayAddrString = z.string().superRefine((s, ctx) => {
  const p = problemOf(() => multiaddr(s))
  if (p !== undefined) ctx.addIssue({ code: 'custom', message: `is not a valid multiaddr (${p})` })
  else if (!/\/p2p\/[^/]+$/.test(s) || s.includes('/p2p-circuit')) {
    ctx.addIssue({
      code: 'custom',
      message: 'does not end with /p2p/<relay id>: copy the address from `warren relay status` on the relay',
    })
  }
})

/** A node reference in `peers`: a node id in either form, or a ticket (which also gives addresses). */
const nodeRef = z.string().superRefine((s, ctx) => {
  const p = looksLikeTicket(s) ? problemOf(() => decodeTicket(s)) : problemOf(() => parseNodeId(s))
  if (p !== undefined) ctx.addIssue({ code: 'custom', message: p.replace(/^"[^"]*" /, '') })
})

const targetString = z.string().superRefine((s, ctx) => {
  const p = targetProblem(s)
  if (p !== undefined) ctx.addIssue({ code: 'custom', message: p.replace(/^"[^"]*" /, '') })
})

/** An `allow` entry: `*`, a node id, or an alias from `peers` (checked against `peers` after parsing). */
const allowEntry = z.string().superRefine((s, ctx) => {
  if (s === '*' || LABEL.test(s)) return
  const p = problemOf(() => parseNodeId(s))
  if (p !== undefined) ctx.addIssue({ code: 'custom', message: 'is not "*", a node id, or an alias from peers' })
})

export const serviceSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { target: v } : v),
  z.strictObject({
    /** TCP target multiaddr. */
    target: targetString,
    /** Who may use it: node ids, `peers` aliases, or `*` for everyone. Absent: every node in `peers`. */
    allow: z.array(allowEntry).optional(),
    /** Also serve raw `/x/<name>` streams, compatible with Kubo's `ipfs p2p forward`. */
    kubo: z.boolean().default(false),
    /**
     * `tcp` (absent): bytes are piped to the target. `http`: requests go through a reverse proxy on this node that
     * adds `X-Warren-Peer: <caller node id>` (and drops one sent by the caller), so the app can trust it.
     */
    type: z.enum(['tcp', 'http']).optional(),
    /** A line about the service, shown to callers by `warren ls` (the `_services` RPC method). */
    description: z.string().max(200, 'is longer than 200 characters').optional(),
  }),
)

const PORT_MAPPING_DEFAULTS = { enabled: true, pcp: true, natPmp: true, upnp: true, lifetimeS: 7200 }

/** Port mapping by the router (docs/traversal.md, "Port mapping"). */
const portMappingSchema = z
  .strictObject({
    /** Ask the router at all. */
    enabled: z.boolean().default(true),
    /** Port Control Protocol (RFC 6887). */
    pcp: z.boolean().default(true),
    /** NAT-PMP (RFC 6886). */
    natPmp: z.boolean().default(true),
    /** UPnP Internet Gateway Device. */
    upnp: z.boolean().default(true),
    /** Lifetime asked for, seconds; renewed at half. */
    lifetimeS: z.number().int().min(10).max(86_400).default(7200),
  })
  .default(PORT_MAPPING_DEFAULTS)

export const configSchema = z.strictObject({
  /** Multiaddrs the node listens on. */
  listen: z.array(multiaddrString).default(['/ip4/0.0.0.0/tcp/4781']),
  /** Addresses to put in tickets instead of the listen addresses (e.g. a public address behind port forwarding). */
  announce: z.array(multiaddrString).default([]),
  /** Aliases for other nodes: alias → node id or ticket. */
  peers: z
    .record(
      z.string().refine((k) => LABEL.test(k) && !looksLikeNodeId(k), { message: labelMessage('alias') }),
      nodeRef,
    )
    .default({}),
  /** Services this node offers, by name. */
  services: z
    .record(
      z.string().refine((k) => LABEL.test(k), { message: labelMessage('service name') }),
      serviceSchema,
    )
    .default({}),
  /** Local API. */
  api: z
    .strictObject({
      /** Unix socket path; relative paths are inside the Warren home. */
      socket: z.string().min(1).default('api.sock'),
    })
    .default({ socket: 'api.sock' }),
  /** Limits on the service protocol. */
  limits: z
    .strictObject({
      /** Time to connect to a service target, ms. */
      connectTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
      /** Service streams open at once from named peers (in peers or an allow list), all together. */
      maxStreams: z.number().int().min(1).max(100_000).default(4_096),
      /** Service streams open at once from one named peer. */
      maxStreamsPerPeer: z.number().int().min(1).max(100_000).default(1_024),
      /** Service streams open at once from all other nodes (they reach only public services), all together. */
      maxPublicStreams: z.number().int().min(0).max(100_000).default(1_024),
      /** Service streams open at once from one node that is not named. */
      maxPublicStreamsPerPeer: z.number().int().min(0).max(100_000).default(64),
      /** Time to dial a node, ms. */
      dialTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
      /** Inbound connections at once from strangers (nodes not in peers, any allow list or relays), all together. */
      maxStrangerConnections: z.number().int().min(0).max(100_000).default(128),
      /** Inbound connections at once from strangers at one IP address (IPv6: one /64). */
      maxStrangerConnectionsPerIp: z.number().int().min(0).max(100_000).default(16),
      /** Relayed inbound connections at once from strangers through one relay. */
      maxStrangerConnectionsPerRelay: z.number().int().min(0).max(100_000).default(64),
    })
    .default({
      connectTimeoutMs: 5_000,
      maxStreams: 4_096,
      maxStreamsPerPeer: 1_024,
      maxPublicStreams: 1_024,
      maxPublicStreamsPerPeer: 64,
      dialTimeoutMs: 10_000,
      maxStrangerConnections: 128,
      maxStrangerConnectionsPerIp: 16,
      maxStrangerConnectionsPerRelay: 64,
    }),
  /** Relays to keep a reservation on (the fastest that grants one is home; see docs/relay.md). */
  relays: z.array(relayAddrString).default([]),
  /**
   * Shared tokens of relays (relay id → token from the relay's `tokens`): presented to that relay only, which then
   * treats this node as if on its allow list. See docs/relay.md.
   */
  relayTokens: z
    .record(
      z.string().superRefine((s, ctx) => {
        const p = problemOf(() => parseNodeId(s))
        if (p !== undefined) ctx.addIssue({ code: 'custom', message: `is not a relay id: ${p}` })
      }),
      z.string().min(16, 'is shorter than 16 characters: copy the whole token from the relay operator').max(256),
    )
    .optional(),
  /** Local access port: SOCKS5, HTTP proxy, PAC file and HTTP gateway on one port; see docs/access.md. */
  proxy: z
    .strictObject({
      /** host:port; a non-loopback address needs `auth`. */
      listen: listenString.default('127.0.0.1:4780'),
      enabled: z.boolean().default(true),
      /** Credentials for SOCKS5 (RFC 1929) and HTTP `Proxy-Authorization: Basic`; required off loopback. */
      auth: z.strictObject({ username: z.string().min(1).max(255), password: z.string().min(1).max(255) }).optional(),
      /** Top-level domain of Warren names (absent: `warren`); also used by the DNS server. */
      tld: z.string().regex(LABEL, labelMessage('top-level domain')).optional(),
      /** Largest HTTP request or response head, bytes (absent: 16384). */
      maxHeaderBytes: z.number().int().min(1024).max(1_048_576).optional(),
      /** Time for a client to send its request head or SOCKS5 handshake, ms (absent: 30000). */
      headersTimeoutMs: z.number().int().min(100).max(600_000).optional(),
      /** Tunnels and gateway requests open at once to one node (absent: 256). */
      maxStreamsPerPeer: z.number().int().min(1).max(100_000).optional(),
      /**
       * More host names (`name` or `name:port`) the access port answers to as a web server, with their
       * `<service>.<node>.<name>` subdomains; IP addresses, `localhost` and `*.localhost` always work (absent: none).
       */
      hosts: z.array(hostString).max(64).optional(),
      /** Serve local users other than the daemon's own on the access port, forwards and DNS over TCP (Linux; absent: false). */
      allowOtherUsers: z.boolean().optional(),
      /** Client connections open at once on the access port (absent: 1024). */
      maxConnections: z.number().int().min(1).max(1_000_000).optional(),
      /** Client connections open at once on the access port from one local user, or one address (absent: 256). */
      maxConnectionsPerClient: z.number().int().min(1).max(1_000_000).optional(),
    })
    .superRefine((p, ctx) => {
      const host = listenHost(p.listen)
      if (host !== undefined && !isLoopbackHost(host) && p.auth === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['auth'],
          message: `is required because listen "${p.listen}" is not a loopback address (add "auth": { "username": "…", "password": "…" })`,
        })
      }
    })
    .optional(),
  /** The dashboard (`/`) and Prometheus metrics (`/metrics`) on an HTTP address of their own (absent: off). */
  metrics: z
    .strictObject({
      listen: listenString,
      /** Allow a listen address other machines can reach, e.g. for a Prometheus server elsewhere (absent: false). */
      public: z.boolean().optional(),
    })
    .superRefine((m, ctx) => {
      const host = listenHost(m.listen)
      if (host !== undefined && !isLoopbackHost(host) && m.public !== true) {
        ctx.addIssue({
          code: 'custom',
          path: ['listen'],
          message: `"${m.listen}" is not a loopback address: add "public": true to serve the dashboard and metrics to other machines`,
        })
      }
    })
    .optional(),
  /** HTTP gateway on the access port: /http/<node>/<service>/<path>. */
  gateway: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Time for a service to answer with its response head, ms (absent: 60000). */
      responseTimeoutMs: z.number().int().min(100).max(600_000).optional(),
    })
    .optional(),
  /** DNS server answering A/AAAA for .warren names with their service addresses (off unless enabled). */
  dns: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** host:port for UDP and TCP (absent: 127.0.0.1:5380). */
      listen: listenString.optional(),
      /** TTL of answers, seconds (absent: 60). */
      ttl: z.number().int().min(0).max(86_400).optional(),
      /** true: a non-loopback `listen` is wanted (other machines may query it); required for one. */
      public: z.boolean().optional(),
      /** Names the DNS server hands addresses to, at most (absent: 65536); config peers always fit. */
      maxNames: z.number().int().min(16).max(4_194_304).optional(),
    })
    .superRefine((d, ctx) => {
      const host = listenHost(d.listen)
      if (host !== undefined && !isLoopbackHost(host) && d.public !== true) {
        ctx.addIssue({
          code: 'custom',
          path: ['public'],
          message: `must be true because listen "${d.listen}" is not a loopback address and other machines could query it (add "public": true)`,
        })
      }
    })
    .optional(),
  /** Transparent mode (Linux): connections to service addresses on any port are captured; see docs/transparent.md. */
  transparent: z
    .strictObject({
      /** Capture connections to the service addresses (needs CAP_NET_ADMIN); `warren up --transparent` also turns it on. */
      enabled: z.boolean().default(false),
      /** IPv4 prefix service addresses are derived in and captured (absent: 100.64.0.0/10); /8 to /24. */
      ipv4Range: cidrString(4, 8, 24).optional(),
      /** IPv6 /64 service addresses are derived in and captured (absent: fd77:6172:7265:6e00::/64). */
      ipv6Range: cidrString(6, 64, 64).optional(),
      /** Name of the network interface Warren adds for the ranges' routes (absent: warren0). */
      interface: z
        .string()
        .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'is not an interface name (1-15 letters, digits, "_", "." or "-")')
        .optional(),
      /** Register the DNS server with systemd-resolved for the TLD on that interface, when resolved runs (absent: true). */
      resolved: z.boolean().optional(),
    })
    .optional(),
  /** Finding nodes by id alone: Kademlia DHT, mDNS on the LAN, lookup cache; see docs/discovery.md. */
  discovery: z
    .strictObject({
      /** Join Warren's DHT (relays are its bootstrap nodes): publish this node's record, look others up. */
      dht: z.boolean().default(true),
      /** `auto`: DHT server only with a detected public address; `server`/`client` force the mode. */
      dhtMode: z
        .enum(['auto', 'server', 'client'], { message: 'is not one of "auto", "server", "client"' })
        .default('auto'),
      /** Find nodes on the LAN with multicast DNS (runs only when the node listens on a non-loopback address). */
      mdns: z.boolean().default(true),
      /** Keep private addresses (RFC 1918, loopback, 100.64/10, 198.18/15 …) in DHT records and answers. */
      privateAddresses: z.boolean().default(false),
      /** More DHT servers to join through, besides `relays` (multiaddrs ending in /p2p/<id>). */
      bootstrap: z.array(relayAddrString).default([]),
      /** Time for one lookup of a node id, all sources together, ms. */
      lookupTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
      /** How long a lookup result is reused before the sources are asked again, ms. */
      cacheTtlMs: z.number().int().min(0).max(86_400_000).default(300_000),
      /** How often this node's record is published again (also at once when its addresses change), ms. */
      republishMs: z.number().int().min(1_000).max(1_800_000).default(1_200_000),
    })
    .optional(),
  /** JSON-RPC between nodes (`/warren/rpc/1.0.0`): who may call this node's methods; see docs/rpc.md. */
  rpc: z
    .strictObject({
      /** Who may call: node ids, `peers` aliases, or `*` for every node. Absent: every node in `peers`. */
      allow: z.array(allowEntry).optional(),
      /** Methods every node may call whatever `allow` says, e.g. `["_ping", "_info"]`. */
      public: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/, 'is not a method name')).default([]),
      /** Time a method has to answer a caller, ms. */
      timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
      /** Largest request or answer, bytes. */
      maxMessageBytes: z
        .number()
        .int()
        .min(1024)
        .max(16 * 1024 * 1024)
        .default(1024 * 1024),
    })
    .default({ public: [], timeoutMs: 30_000, maxMessageBytes: 1024 * 1024 }),
  /** Direct paths through NATs: a UDP (UDX) listener and hole punching over relayed connections; see docs/traversal.md. */
  traversal: z
    .strictObject({
      /** Try to upgrade relayed connections to direct ones. */
      enabled: z.boolean().default(true),
      /** UDP listen addresses for direct paths (port 0: any free port). */
      udpListen: z.array(multiaddrString).default(['/ip4/0.0.0.0/udp/0']),
      /** Try a TCP simultaneous open before UDX when both NATs map TCP endpoint-independently (faster paths). */
      tcp: z.boolean().default(true),
      /** Punch requests answered per minute from one node (known or not). */
      punchRequestsPerPeer: z.number().int().min(0).max(10_000).default(12),
      /** Punch requests answered per minute from strangers, all together (known nodes do not count). */
      punchRequestsPerMinute: z.number().int().min(0).max(100_000).default(60),
      /** Ask the router to map the TCP listen port and the UDP traversal port (PCP, NAT-PMP, UPnP IGD). */
      portMapping: portMappingSchema,
      /** Let browsers that reach this node through a relay open a direct WebRTC path to it (docs/browser.md). */
      webrtc: z.boolean().default(true),
    })
    .default({
      enabled: true,
      udpListen: ['/ip4/0.0.0.0/udp/0'],
      tcp: true,
      punchRequestsPerPeer: 12,
      punchRequestsPerMinute: 60,
      portMapping: PORT_MAPPING_DEFAULTS,
      webrtc: true,
    }),
})

/** A validated config with defaults filled in. */
export type Config = z.output<typeof configSchema>
/** What a user may write in config.json. */
export type ConfigInput = z.input<typeof configSchema>
/** One service entry, long form. */
export type ServiceConfig = z.output<typeof serviceSchema>

/** The config `warren init` writes. */
export function defaultConfigInput(listen?: string[]): ConfigInput {
  return { listen: listen ?? ['/ip4/0.0.0.0/tcp/4781'], peers: {}, services: {} }
}

export { LABEL as NAME_PATTERN }
