/**
 * A Warren relay in one process: circuit relay v2 on TCP and WebSocket (WSS with a certificate, or plain ws behind a
 * TLS-terminating proxy), identify (observed addresses), ping, `/warren/relay/1.0.0`, and a STUN responder on UDP,
 * with Warren's policy ({@link RelayHooks}). Relays only ever carry Noise-encrypted bytes between nodes.
 *
 * @example
 * ```ts
 * const relay = await startRelay({ privateKey, config: validateRelayConfig({ listen: ['/ip4/0.0.0.0/tcp/4001'] }) })
 * console.log(relay.addrs)          // ['/ip4/…/tcp/4001/p2p/12D3KooW…', …]
 * await relay.stop()
 * ```
 */

import { readFile } from 'node:fs/promises'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { Bootstrapper } from '../../discovery/bootstrap.ts'
import { relayPeerFinder } from '../../discovery/relay-view.ts'
import { type RoutingHttpServer, startRoutingHttp } from '../../discovery/routing-http.ts'
import { isWarrenError, WarrenError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { LogThrottle } from '../../log-throttle.ts'
import { openFilesLimit } from '../../open-files.ts'
import { createNode, type NodeOptions, type WarrenLibp2p } from '../../p2p/create.ts'
import { routingTableSize } from '../../p2p/dht.ts'
import { RecordStore } from '../../p2p/record-store.ts'
import type { StunResponder } from '../../stun/codec.ts'
import { startStunPair } from '../../stun/pair.ts'
import type { StunTcpResponder } from '../../stun/tcp-server.ts'
import { VERSION } from '../../version.ts'
import { handleRelayAdmits } from '../admits.ts'
import { handleRelayInfo, type RelayInfo, type RelayInfoRequest } from '../info.ts'
import type { CircuitEndCause, CircuitInfo } from './circuits.ts'
import type { RelayConfig, RelayLimits } from './config.ts'
import { descriptorProblem, watchConnectionCap } from './conn-cap.ts'
import { startConnSweep } from './conn-sweep.ts'
import { forgetDisconnectedPeers } from './forget-peers.ts'
import { RelayHooks, type ReservationInfo } from './hooks.ts'
import { type IdleParking, startIdleParking } from './idle-park.ts'
import { IpCap } from './ip-cap.ts'
import { RelayPolicy } from './policy.ts'

export interface RelayOptions {
  privateKey: PrivateKey
  config: RelayConfig
  log?: Logger
  /** Skips unheard `main-event` events process-wide (src/p2p/patches/unheard-events.ts); the relay daemon turns it on. */
  skipUnheardEvents?: boolean
}

export interface RelayStatus {
  id: string
  version: string
  uptimeMs: number
  /** Addresses nodes put in `relays` (with /p2p/<relay id>). */
  addrs: string[]
  /** `answeredTcp`: Binding requests answered over TCP on the same port (null when the TCP port could not be bound). */
  stun: { host: string; port: number; answered: number; answeredTcp: number | null } | null
  /** The relay as a DHT server: peers in its routing table (other relays and public nodes). */
  dht: { routingTable: number; records: number; maxRecords: number; evicted: number }
  /** The Delegated Routing V1 HTTP API, when it runs. */
  routing: { url: string } | null
  /** The web app served beside the relay (`warren relay --web`): its public URL and where it listens; set by the daemon. */
  web?: { url: string; local: string } | null
  private: boolean
  allow: string[]
  /** How many shared tokens the relay has (never the tokens themselves), and the nodes admitted by one now. */
  tokens: { configured: number; nodes: string[] }
  limits: RelayLimits
  reservations: ReservationInfo[]
  circuits: CircuitInfo[]
  totals: {
    connections: number
    circuitsOpened: number
    bytesRelayed: number
    refusedReservations: number
    /** Reservations released because their node disconnected from the relay. */
    releasedReservations: number
    refusedCircuits: number
    /** Circuits that ended since start, by cause: `limit` (data or duration limit), `closed`, `error`. */
    circuitsEnded: Record<CircuitEndCause, number>
    /**
     * Idle client connections parked now (their socket and keys kept, js-libp2p's objects let go), parked since
     * start, and woken since start (by a stream, a circuit or a close); all 0 with parking off.
     */
    parked: { now: number; parks: number; wakes: number }
  }
}

export interface Relay {
  readonly peerId: PeerId
  readonly libp2p: WarrenLibp2p
  /** Dialable addresses with /p2p/<relay id>. */
  readonly addrs: string[]
  readonly stun: StunResponder | undefined
  status(): RelayStatus
  /**
   * Takes the reloadable settings of `config` (allow list, tokens, `private`, limits) without a restart: connections,
   * reservations and circuits stay; reservations get the new limits for circuits opened from now on. Returns the
   * names of other settings that differ from the running ones and need a restart.
   */
  reload(config: RelayConfig): string[]
  /** Stops accepting, ends every circuit and connection, closes the STUN socket. Idempotent. */
  stop(): Promise<void>
}

/** The multiaddr of the WebSocket listener, and the WSS settings when it has a certificate. */
async function webSocketSetup(
  config: RelayConfig,
): Promise<{ listen?: string; init?: NodeOptions['webSockets']; announce: string[] }> {
  const announce = config.behindProxy ? [`/dns4/${config.behindProxy.host}/tcp/${config.behindProxy.port}/wss`] : []
  if (config.ws === undefined) return { announce }
  const host = config.ws.host ?? (config.behindProxy ? '127.0.0.1' : '0.0.0.0')
  const family = host.includes(':') ? 'ip6' : 'ip4'
  if (config.ws.cert === undefined || config.ws.key === undefined) {
    return { listen: `/${family}/${host}/tcp/${config.ws.port}/ws`, announce }
  }
  const read = async (what: 'cert' | 'key', path: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8')
    } catch (err) {
      throw new WarrenError('ERR_CONFIG_INVALID', `cannot read ws.${what} ${path}: ${(err as Error).message}`, {
        hint: `Point --${what} (or ws.${what} in relay.json) at a readable PEM file.`,
        details: { path },
      })
    }
  }
  const [cert, key] = await Promise.all([read('cert', config.ws.cert), read('key', config.ws.key)])
  return { listen: `/${family}/${host}/tcp/${config.ws.port}/tls/ws`, init: { https: { cert, key } }, announce }
}

/** A listen failure with the relay's own fix (the generic ones talk about config.json). */
function relayListenError(err: unknown, hint: string): unknown {
  if (!isWarrenError(err, 'ERR_LISTEN_FAILED')) return err
  return new WarrenError(
    'ERR_LISTEN_FAILED',
    `the relay ${err.message.replace(/^the STUN responder /, 'STUN responder ')}`,
    {
      hint,
      cause: err,
    },
  )
}

/**
 * Behind a reverse proxy every WebSocket client arrives from the proxy's (loopback) address, so the per-IP cap would
 * count them all as one: it does not apply to them (the total cap does).
 */
function proxiedBy(config: RelayConfig): ((remoteAddr: Multiaddr) => boolean) | undefined {
  if (config.behindProxy === undefined) return undefined
  return (addr) => {
    const parts = addr.getComponents()
    const ip = parts.find((c) => c.name === 'ip4' || c.name === 'ip6')?.value ?? ''
    const loopback = ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.')
    return loopback && parts.some((c) => c.name === 'ws')
  }
}

/** Settings a running relay cannot take without a restart. */
const RESTART_KEYS = [
  'listen',
  'maxConnections',
  'announce',
  'ws',
  'behindProxy',
  'stun',
  'api',
  'discovery',
  'routing',
  'web',
  'metrics',
] as const
type RestartKey = (typeof RESTART_KEYS)[number]

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const { config } = opts
  const log = opts.log ?? (() => {})
  const policy = new RelayPolicy(config)
  const ws = await webSocketSetup(config)
  const proxied = proxiedBy(config)
  const hooks = new RelayHooks(policy, log, { proxied })
  const ipCap = new IpCap({
    perIp: () => policy.limits.maxConnectionsPerIp,
    isAllowed: (id) => policy.isAllowed(id),
    ...(proxied === undefined ? {} : { proxied }),
    log: (line) => log('warn', line),
  })
  const records = new RecordStore({ maxRecords: config.discovery.maxRecords })
  const libp2pMonitor = process.env.WARREN_BENCH_RELAY_MONITOR === '1'
  const nodeOpts: NodeOptions = {
    privateKey: opts.privateKey,
    listen: [...config.listen, ...(ws.listen === undefined ? [] : [ws.listen])],
    appendAnnounce: [...config.announce, ...ws.announce],
    preset: 'relay',
    maxConnections: config.maxConnections,
    ...(opts.skipUnheardEvents === true ? { skipUnheardEvents: true } : {}),
    connectionGater: { ...hooks.gater, ...ipCap.gater() },
    // js-libp2p's monitor pings every connection at once every 10 s; the relay sweeps them itself (conn-sweep.ts).
    // WARREN_BENCH_RELAY_MONITOR=1 keeps libp2p's instead, only for bench/relay-heap.ts, which compares the two
    monitor: libp2pMonitor ? 'libp2p' : 'off',
    // relays are the DHT's bootstrap nodes: always servers
    dht: { mode: 'server', privateAddresses: config.discovery.privateAddresses },
    recordStore: records,
    relayServer: {
      hopTimeout: 30_000,
      maxInboundHopStreams: 4_096,
      maxOutboundStopStreams: 4_096,
      reservations: {
        // Warren's gater enforces the cap (allowed nodes are exempt); the store must not refuse them
        maxReservations: Number.MAX_SAFE_INTEGER,
        applyDefaultLimit: false,
        reservationTtl: config.limits.reservationTtlSec * 1000,
      },
    },
  }
  if (ws.init !== undefined) nodeOpts.webSockets = ws.init
  const libp2p = await createNode(nodeOpts).catch((err: unknown) => {
    throw relayListenError(
      err,
      'Another process (perhaps another relay) uses that port; pass other --listen/--ws ports or change relay.json.',
    )
  })
  let stun: StunResponder | undefined
  let stunTcp: StunTcpResponder | undefined
  let routing: RoutingHttpServer | undefined
  try {
    hooks.install(libp2p)
    if (config.stun !== false) {
      const pair = await startStunPair({ host: config.stun.host, port: config.stun.port }).catch((err: unknown) => {
        throw relayListenError(
          err,
          'Pass another UDP port with --stun <port> (or --no-stun), or stop the process that holds it.',
        )
      })
      stun = pair.udp
      // the same port over TCP tells nodes their TCP mapping (TCP direct paths); without it they punch over UDP only
      stunTcp = pair.tcp
      if (pair.tcpError !== undefined) log('warn', `${pair.tcpError.message}; nodes will punch UDP direct paths only`)
    }
    if (config.routing !== undefined) {
      routing = await startRoutingHttp({
        host: config.routing.host,
        port: config.routing.port,
        find: relayPeerFinder({
          libp2p,
          reserved: () => hooks.reservations().map((r) => r.node),
          privateAddresses: config.discovery.privateAddresses,
        }),
        log,
      })
    }
  } catch (err) {
    hooks.close()
    await stun?.close()
    await stunTcp?.close()
    await libp2p.stop()
    throw err
  }
  const bootstrap = new Bootstrapper(libp2p, libp2p.services.dht!, config.discovery.bootstrap, log)
  bootstrap.start()
  const sweep = libp2pMonitor ? undefined : startConnSweep(libp2p, { log: (m) => log('debug', m) })
  // idle client connections shed js-libp2p's objects until they are used (parked-link.ts);
  // WARREN_BENCH_RELAY_NO_PARK=1 keeps them whole, only for bench/relay.ts's `no-park` variant
  const parking =
    process.env.WARREN_BENCH_RELAY_NO_PARK === '1'
      ? undefined
      : startIdleParking(libp2p, { log: (m) => log('debug', m) })
  const cap = watchConnectionCap(libp2p, config.maxConnections, log)
  const forget = forgetDisconnectedPeers(libp2p)
  const fdProblem = descriptorProblem(config.maxConnections, openFilesLimit())
  if (fdProblem !== undefined) log('warn', fdProblem)
  const started = Date.now()
  const id = libp2p.peerId.toString()
  // anyone can send a wrong token at will: logged once per 10 s with a count of the others
  const badTokens = new LogThrottle({ intervalMs: 10_000, emit: (line) => log('warn', line) })
  const infoFor = (peer: PeerId, request: RelayInfoRequest, from: Multiaddr): RelayInfo => {
    const node = peer.toString()
    const intent = request.intent
    let token: RelayInfo['token']
    if (request.token !== undefined) {
      token = policy.admitByToken(node, request.token) ? 'accepted' : 'refused'
      if (token === 'accepted') hooks.applyLimits(peer)
      else
        badTokens.log('token', `node ${node} presented a token that is not one of this relay's tokens`, 'wrong tokens')
    }
    const reservation = hooks.reservationOf(peer)
    return {
      ...(token === undefined ? {} : { token }),
      admission: policy.admission(node),
      relay: id,
      node,
      allowed: policy.isAllowed(node),
      private: policy.private,
      limits: policy.limitFor(node) ?? null,
      reservation: reservation === undefined ? null : { expiresAt: reservation.expiresAt },
      wouldRefuse: hooks.wouldRefuseReservation(node, from, intent === 'reserve') ?? null,
      refusal: hooks.lastRefusal(node) ?? null,
      stun: stun === undefined ? null : { port: stun.address.port },
    }
  }
  await handleRelayInfo(libp2p, infoFor)
  await handleRelayAdmits(
    libp2p,
    (peer) => policy.declarationRefusal(peer.toString()),
    (peer, declaration) => {
      const answer = policy.declare(peer.toString(), declaration)
      if (answer.accepted) {
        const whom = declaration.any ? 'every node' : `${answer.ids} node(s)`
        log('debug', `node ${peer} admits ${whom}: circuits from them to it are unlimited`)
      }
      return answer
    },
  )
  const addrs = libp2p.getMultiaddrs().map(String)
  for (const a of addrs) log('info', `relay listening on ${a}`)
  if (stun !== undefined) {
    const tcp = stunTcp === undefined ? '' : ' and tcp'
    log('info', `STUN responder on udp${tcp} ${stun.address.host}:${stun.address.port}`)
  }
  if (routing !== undefined) log('info', `delegated routing on ${routing.url}/routing/v1/peers/<id>`)

  let stopping: Promise<void> | undefined
  let running = config
  return {
    peerId: libp2p.peerId,
    libp2p,
    addrs,
    stun,
    reload: (next) => {
      const restart: string[] = RESTART_KEYS.filter((k) => JSON.stringify(next[k]) !== JSON.stringify(running[k]))
      if (next.limits.reservationTtlSec !== running.limits.reservationTtlSec) restart.push('limits.reservationTtlSec')
      policy.update(next)
      hooks.applyLimits()
      // what takes a restart keeps its running value, so a later reload still names it
      const kept = Object.fromEntries(RESTART_KEYS.map((k) => [k, running[k]])) as Pick<RelayConfig, RestartKey>
      running = { ...next, ...kept, limits: { ...next.limits, reservationTtlSec: running.limits.reservationTtlSec } }
      return restart
    },
    status: () => ({
      id,
      version: VERSION,
      uptimeMs: Date.now() - started,
      addrs: libp2p.getMultiaddrs().map(String),
      stun:
        stun === undefined
          ? null
          : { ...stun.address, answered: stun.answered, answeredTcp: stunTcp?.answered ?? null },
      dht: {
        routingTable: libp2p.services.dht === undefined ? 0 : routingTableSize(libp2p.services.dht),
        records: records.records,
        maxRecords: records.maxRecords,
        evicted: records.evicted,
      },
      routing: routing === undefined ? null : { url: routing.url },
      private: policy.private,
      allow: policy.allowList,
      tokens: { configured: policy.tokenCount, nodes: policy.tokenNodes },
      limits: policy.limits,
      reservations: hooks.reservations(),
      circuits: hooks.circuits.list(),
      totals: {
        connections: libp2p.getConnections().length,
        circuitsOpened: hooks.circuits.opened,
        bytesRelayed: hooks.circuits.bytesRelayed,
        refusedReservations: hooks.refused.reservations,
        releasedReservations: hooks.released,
        refusedCircuits: hooks.refused.circuits,
        circuitsEnded: { ...hooks.circuits.ended },
        parked: parkedTotals(parking),
      },
    }),
    stop: () => {
      stopping ??= (async () => {
        sweep?.stop()
        parking?.stop()
        cap.stop()
        forget.stop()
        hooks.close()
        badTokens.close()
        bootstrap.stop()
        await routing?.close()
        await libp2p.stop()
        await stun?.close()
        await stunTcp?.close()
      })()
      return stopping
    },
  }
}

function parkedTotals(parking: IdleParking | undefined): { now: number; parks: number; wakes: number } {
  if (parking === undefined) return { now: 0, parks: 0, wakes: 0 }
  const c = parking.counts()
  return { now: c.parked, parks: c.parks, wakes: c.wakes }
}
