/**
 * `warren relay`: run a Warren relay in the foreground (circuit relay v2 on TCP and WebSocket, identify, STUN), and
 * `warren relay status`: its reservations, circuits and bytes relayed, and `warren relay reload`: relay.json again
 * without a restart, both through its local API socket.
 *
 * The relay has its own home (`--home`, else $WARREN_RELAY_HOME, else ~/.warren-relay) with its key and relay.json;
 * flags override relay.json (see docs/relay.md).
 */
import type { Command } from 'commander'
import { WarrenError } from '../errors.ts'
import { PRESETS } from '../p2p/presets.ts'
import { HOSTNAME, MAX_CONNECTIONS, MIN_CONNECTIONS, type RelayConfigInput } from '../relay/server/config.ts'
import type { RelayStatus } from '../relay/server/relay-node.ts'
import { collect, say, sayJson, table } from './common.ts'
import { runInForeground } from './foreground.ts'
import { formatDuration } from './status.ts'

function wholeNumber(flag: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v)
    if (!/^\d+$/.test(v) || n < min || n > max) {
      throw new WarrenError('ERR_USAGE', `--${flag} ${JSON.stringify(v)} is not a whole number from ${min} to ${max}`, {
        hint: `See \`warren relay --help\` for what --${flag} means.`,
      })
    }
    return n
  }
}

interface RelayFlags {
  listen?: string[]
  ws?: number
  cert?: string
  key?: string
  behindProxy?: string
  announce?: string[]
  stun?: number | false
  private?: boolean
  allow?: string[]
  maxConnections?: number
  maxReservations?: number
  maxCircuits?: number
  maxCircuitsPerNode?: number
  dataLimit?: number
  durationLimit?: number
  reservationTtl?: number
  routing?: number
  metrics?: string
  bootstrap?: string[]
  privateAddresses?: boolean
  web?: boolean
  webListen?: { host: string; port: number }
  webDomain?: string
  json?: boolean
}

/** `--web-listen host:port` (`[::1]:8080` for IPv6, `:8080` for every address). */
export function parseWebListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d+)$/.exec(v)
  const port = Number(m?.[3])
  if (m === null || port > 65_535) {
    throw new WarrenError('ERR_USAGE', `--web-listen ${JSON.stringify(v)} is not <host>:<port>`, {
      hint: 'For example --web-listen 0.0.0.0:8443, --web-listen [::]:8443 or --web-listen 127.0.0.1:8080.',
    })
  }
  return { host: m[1] ?? (m[2] === '' || m[2] === undefined ? '0.0.0.0' : m[2]), port }
}

function webDomain(v: string): string {
  if (!HOSTNAME.test(v)) {
    throw new WarrenError(
      'ERR_USAGE',
      `--web-domain ${JSON.stringify(v)} is not a DNS name such as relay.example.net`,
      {
        hint: 'Give the name browsers open the relay by (the name of its certificate), without a scheme or port.',
      },
    )
  }
  return v.toLowerCase()
}

/** The flags as relay settings (only the ones given, so relay.json keeps the rest). */
export function flagsToConfig(f: RelayFlags): RelayConfigInput {
  const out: RelayConfigInput = {}
  if (f.listen !== undefined) out.listen = f.listen
  if (f.announce !== undefined) out.announce = f.announce
  if (f.ws !== undefined || f.cert !== undefined || f.key !== undefined) {
    if (f.ws === undefined) {
      throw new WarrenError('ERR_USAGE', '--cert and --key need --ws <port>: they make the WebSocket listener WSS', {
        hint: 'For example: warren relay --ws 443 --cert fullchain.pem --key privkey.pem',
      })
    }
    out.ws = {
      port: f.ws,
      ...(f.cert === undefined ? {} : { cert: f.cert }),
      ...(f.key === undefined ? {} : { key: f.key }),
    }
  }
  if (f.behindProxy !== undefined) out.behindProxy = { host: f.behindProxy }
  if (f.stun !== undefined) out.stun = f.stun === false ? false : { port: f.stun }
  if (f.private === true) out.private = true
  if (f.allow !== undefined) out.allow = f.allow
  const limits: NonNullable<RelayConfigInput['limits']> = {}
  if (f.maxConnections !== undefined) out.maxConnections = f.maxConnections
  if (f.maxReservations !== undefined) limits.maxReservations = f.maxReservations
  if (f.maxCircuits !== undefined) limits.maxCircuits = f.maxCircuits
  if (f.maxCircuitsPerNode !== undefined) limits.maxCircuitsPerNode = f.maxCircuitsPerNode
  if (f.dataLimit !== undefined) limits.dataBytes = f.dataLimit
  if (f.durationLimit !== undefined) limits.durationSec = f.durationLimit
  if (f.reservationTtl !== undefined) limits.reservationTtlSec = f.reservationTtl
  if (Object.keys(limits).length > 0) out.limits = limits
  if (f.routing !== undefined) out.routing = { port: f.routing }
  if (f.metrics !== undefined) out.metrics = { listen: f.metrics }
  if (f.web === true || f.webListen !== undefined || f.webDomain !== undefined) {
    out.web = {
      ...(f.webListen === undefined ? {} : f.webListen),
      ...(f.webDomain === undefined ? {} : { domain: f.webDomain }),
    }
  }
  if (f.bootstrap !== undefined || f.privateAddresses === true) {
    out.discovery = {
      ...(f.bootstrap === undefined ? {} : { bootstrap: f.bootstrap }),
      ...(f.privateAddresses === true ? { privateAddresses: true } : {}),
    }
  }
  return out
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = -1
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`
}

/** Whom an allowed node told the relay it admits (circuits from them are unlimited), for `relay status`. */
function admitsOf(admits: { any: boolean; ids: number } | null | undefined): string {
  if (admits == null) return ''
  return admits.any ? ' (it admits everyone)' : ` from the ${admits.ids} node(s) it admits, bounded from others`
}

export function formatRelayStatus(st: RelayStatus): string {
  const now = Date.now()
  const policy = st.private ? 'private (only allowed nodes get reservations)' : 'public'
  const lines = [
    table([
      ['relay id', st.id],
      ['version', st.version],
      ['uptime', formatDuration(st.uptimeMs)],
      ['policy', policy],
      ['bounded', `${bytes(st.limits.dataBytes)} and ${st.limits.durationSec} s per relayed connection`],
      [
        'caps',
        `${st.limits.maxReservations} reservations, ${st.limits.maxCircuits} circuits, ${st.limits.maxCircuitsPerNode} per node`,
      ],
      [
        'stun',
        st.stun === null
          ? 'off'
          : `udp${st.stun.answeredTcp === null ? '' : ' and tcp'} ${st.stun.host}:${st.stun.port} ` +
            `(${st.stun.answered} answered${st.stun.answeredTcp === null ? '' : `, ${st.stun.answeredTcp} over tcp`})`,
      ],
      ['relayed', `${bytes(st.totals.bytesRelayed)} in ${st.totals.circuitsOpened} circuits since start`],
      ['refused', `${st.totals.refusedReservations} reservations, ${st.totals.refusedCircuits} circuits`],
      [
        'connections',
        `${st.totals.connections}` + (st.totals.parked.now > 0 ? ` (${st.totals.parked.now} idle ones parked)` : ''),
      ],
      [
        'dht',
        `server, ${st.dht.routingTable} peer(s) in the routing table, ${st.dht.records}/${st.dht.maxRecords} records${st.dht.evicted > 0 ? ` (${st.dht.evicted} evicted)` : ''}`,
      ],
      ['routing', st.routing === null ? 'off' : `${st.routing.url}/routing/v1/peers/<id>`],
      ['web app', st.web == null ? 'off' : `${st.web.url}#<ticket>/<service> (listening on ${st.web.local})`],
    ]),
    `addresses (${st.addrs.length})`,
    ...st.addrs.map((a) => `  ${a}`),
    `allowed nodes (${st.allow.length})`,
    ...st.allow.map((a) => `  ${a}`),
    `tokens ${st.tokens.configured}, nodes admitted by a token (${st.tokens.nodes.length})`,
    ...st.tokens.nodes.map((a) => `  ${a}`),
    `reservations (${st.reservations.length})`,
  ]
  if (st.reservations.length > 0) {
    lines.push(
      table(
        st.reservations.map((r) => [
          r.node,
          `${r.admission === 'token' ? 'token, unlimited' : r.allowed ? 'allowed, unlimited' : `bounded`}${admitsOf(r.admits)}  expires in ${formatDuration(Math.max(0, r.expiresAt - now))}`,
        ]),
        '  ',
      ),
    )
  }
  lines.push(`circuits (${st.circuits.length})`)
  if (st.circuits.length > 0) {
    lines.push(
      table(
        st.circuits.map((c) => [
          `${c.src} → ${c.dst}`,
          `${bytes(c.bytes)}${c.limit === undefined ? '' : ` of ${bytes(c.limit.dataBytes)}`}, open ${formatDuration(now - c.startedAt)}${c.closesAt === undefined ? '' : `, closes in ${formatDuration(Math.max(0, c.closesAt - now))}`}`,
        ]),
        '  ',
      ),
    )
  }
  return lines.join('\n')
}

async function relayHomeOf(cmd: Command) {
  const { resolveRelayHome } = await import('../relay/server/home-dir.ts')
  return resolveRelayHome(cmd.optsWithGlobals().home as string | undefined)
}

export function register(program: Command): void {
  const relay = program
    .command('relay')
    .description('run a Warren relay in the foreground: circuit relay v2 (TCP, WebSocket), identify and STUN')
    .option('--listen <multiaddr>', 'listen address, repeatable (default /ip4/0.0.0.0/tcp/4001)', collect)
    .option('--ws <port>', 'also listen for WebSocket connections on this TCP port', wholeNumber('ws', 0, 65_535))
    .option('--cert <file>', 'PEM certificate: the --ws port speaks WSS (needs --key)')
    .option('--key <file>', 'PEM private key of --cert')
    .option(
      '--behind-proxy <host>',
      'a TLS proxy serves wss://<host>:443 and forwards to --ws; announce /dns4/<host>/tcp/443/wss',
    )
    .option('--announce <multiaddr>', 'another address to announce, repeatable', collect)
    .option('--stun <port>', 'UDP port of the STUN responder (default 3478)', wholeNumber('stun', 0, 65_535))
    .option('--no-stun', 'run no STUN responder')
    .option('--private', 'reservations only for nodes on the allow list')
    .option('--allow <node id>', 'node with unlimited reservations and circuits, repeatable', collect)
    .option(
      '--max-reservations <n>',
      'reservations held by other nodes at once',
      wholeNumber('max-reservations', 0, 1_000_000),
    )
    .option(
      '--max-connections <n>',
      `connections kept open at once (default ${PRESETS.relay.maxConnections}; needs ulimit -n above it)`,
      wholeNumber('max-connections', MIN_CONNECTIONS, MAX_CONNECTIONS),
    )
    .option('--max-circuits <n>', 'relayed connections at once, in total', wholeNumber('max-circuits', 1, 1_000_000))
    .option(
      '--max-circuits-per-node <n>',
      'relayed connections at once per other node',
      wholeNumber('max-circuits-per-node', 1, 1_000_000),
    )
    .option(
      '--data-limit <bytes>',
      'bytes per relayed connection to other nodes',
      wholeNumber('data-limit', 1_024, Number.MAX_SAFE_INTEGER),
    )
    .option(
      '--duration-limit <seconds>',
      'seconds per relayed connection to other nodes',
      wholeNumber('duration-limit', 1, 86_400),
    )
    .option(
      '--reservation-ttl <seconds>',
      'lifetime of a reservation before renewal',
      wholeNumber('reservation-ttl', 1, 86_400),
    )
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://<host:port>/metrics (docs/observability.md)')
    .option(
      '--routing <port>',
      'serve the Delegated Routing V1 HTTP API (GET /routing/v1/peers/<id>) on this TCP port',
      wholeNumber('routing', 0, 65_535),
    )
    .option('--bootstrap <multiaddr>', 'another relay (DHT server) to join, repeatable', collect)
    .option('--private-addresses', 'keep private addresses in DHT answers (a LAN or lab network only)')
    .option('--web', 'serve the Warren web app (page + Service Worker) for browsers; needs --ws')
    .option(
      '--web-listen <host:port>',
      'address of the web app (implies --web; default 0.0.0.0:8443 with --cert, else 0.0.0.0:8080)',
      parseWebListen,
    )
    .option('--web-domain <name>', "the relay's public DNS name, which the page dials (implies --web)", webDomain)
    .option('--json', 'print the relay id and addresses as one JSON line once ready')
    .addHelpText(
      'after',
      '\nThe relay home is --home, else $WARREN_RELAY_HOME, else ~/.warren-relay (key made on the first start, optional\n' +
        'relay.json, API socket relay.sock). Flags override relay.json. Ctrl-C or SIGTERM stop it cleanly.\n' +
        '`warren relay status` shows reservations, circuits and bytes relayed. See docs/relay.md.',
    )
    .action(async (flags: RelayFlags, cmd: Command) => {
      const { createLogger, logLevelFromEnv } = await import('../log.ts')
      const { runRelayDaemon } = await import('../daemon/relay-daemon.ts')
      const log = createLogger({ min: logLevelFromEnv() })
      const d = await runRelayDaemon({ home: await relayHomeOf(cmd), overrides: flagsToConfig(flags), log })
      // SIGINT/SIGTERM stop the relay cleanly from here on: installed before the relay says it is ready
      const foreground = runInForeground(d, (signal) =>
        log('warn', `${signal} again: exiting without finishing the clean stop`),
      )
      const st = d.relay.status()
      if (flags.json === true) {
        process.stdout.write(
          `${JSON.stringify({ id: st.id, addrs: st.addrs, stun: st.stun, routing: st.routing, web: d.web === undefined ? null : { url: d.web.url, local: d.web.local }, metrics: d.metrics ?? null, socket: d.socket, home: d.home.dir })}\n`,
        )
      } else {
        say(`relay ${st.id}`)
        say('add one of these to `relays` in the config.json of nodes that use this relay:')
        for (const a of st.addrs) say(`  ${a}`)
        if (st.routing !== null) say(`delegated routing for browsers: ${st.routing.url}/routing/v1/peers/<node id>`)
        if (d.web !== undefined) say(`web app for browsers: ${d.web.url}#<ticket or node id>/<service>`)
        say(`status: warren relay status${cmd.optsWithGlobals().home ? ` --home ${d.home.dir}` : ''}`)
      }
      // SIGHUP reloads relay.json, like `warren relay reload`
      const onHup = (): void => {
        d.reload().catch((err: unknown) =>
          log('error', `reload on SIGHUP failed, the relay keeps its settings: ${(err as Error).message}`),
        )
      }
      process.on('SIGHUP', onHup)
      try {
        await foreground
      } finally {
        process.off('SIGHUP', onHup)
      }
    })
  relay
    .command('reload')
    .description("reload a running relay's relay.json: allow list, tokens, private and limits, without a restart")
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nConnections, reservations and circuits stay; circuits opened from now on take the new limits. Listen\n' +
        'addresses and ports take a restart (the answer names them). Sending SIGHUP to the relay does the same.',
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const { relayCall } = await import('../client/relay-client.ts')
      const r = await relayCall(await relayHomeOf(cmd), 'relay.reload')
      if (cmd.optsWithGlobals().json === true) sayJson(r)
      else {
        say(
          `reloaded ${r.config}: ${r.allow} allowed node(s), ${r.tokens} token(s), ${r.private ? 'private' : 'public'}, ` +
            `bounded ${bytes(r.limits.dataBytes)} and ${r.limits.durationSec} s per relayed connection`,
        )
        if (r.restartNeeded.length > 0) say(`restart the relay to apply: ${r.restartNeeded.join(', ')}`)
      }
    })
  relay
    .command('status')
    .description("show a running relay's reservations, circuits and bytes relayed")
    .option('--json', 'print as JSON')
    .action(async (_opts: unknown, cmd: Command) => {
      const { relayCall } = await import('../client/relay-client.ts')
      const st = await relayCall(await relayHomeOf(cmd), 'relay.status')
      // commander hands `relay status --json` to the parent's --json, so read it from either
      if (cmd.optsWithGlobals().json === true) sayJson(st)
      else say(formatRelayStatus(st))
    })
}
