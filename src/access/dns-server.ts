/**
 * The optional `.warren` DNS server (UDP and TCP on one loopback address and port, packets via `dns-packet`):
 *
 * - `A`/`AAAA` for `<service>.<node>.warren` and `<node>.warren` → the deterministic service addresses
 *   ({@link AddressTable}); `<node>` is a `peers` alias or the base36 node id
 * - NXDOMAIN for names of the wrong shape or unknown nodes, with the zone's SOA for negative caching
 * - REFUSED for anything outside `.warren`: it is not a recursive resolver
 *
 * Point systemd-resolved or `/etc/resolver/warren` at it for the `warren` domain (docs/access.md).
 */

import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, isIPv6, type Server, type Socket } from 'node:net'
import type { PeerId } from '@libp2p/interface'
import dnsPacket, { type Answer, type Packet, type Question } from 'dns-packet'
import { formatListenAddress, parseListenAddress } from '../config/listen-address.ts'
import { WarrenError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { LocalUserGate } from './local-user.ts'
import { parseWarrenHost } from './names.ts'
import type { AddressTable } from './service-addresses.ts'

export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const

export interface DnsServerOptions {
  listen: string
  tld: string
  ttl: number
  addresses: AddressTable
  /** `proxy.allowOtherUsers`: answer TCP queries of every local user (UDP ones cannot be told apart). */
  allowOtherUsers?: boolean
  /** Node id for a `<node>` label; throws when it names no node. */
  resolvePeer(label: string): PeerId
  log?: Logger
}

/** Answers one query packet (exported for unit tests of the zone logic). */
export function answerQuery(query: Packet, opts: Omit<DnsServerOptions, 'listen' | 'log'>): Packet {
  const q: Question | undefined = query.questions?.[0]
  // dns-packet reads label bytes as UTF-8: a name that is not plain ASCII would be echoed back re-encoded, longer
  // than it came (a malformed answer), so such a question is not echoed and gets FORMERR
  const ascii = q !== undefined && /^[\x21-\x7e]*$/.test(q.name)
  const base: Packet = {
    type: 'response',
    id: query.id ?? 0,
    flags: (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED,
    questions: ascii ? [q] : [],
  }
  const respond = (rcode: number, answers: Answer[] = [], soa = false, aa = true): Packet => ({
    ...base,
    flags: (base.flags ?? 0) | rcode | (aa ? dnsPacket.AUTHORITATIVE_ANSWER : 0),
    answers,
    authorities: soa ? [soaRecord(opts.tld, opts.ttl)] : [],
  })
  if (!ascii || (query.questions?.length ?? 0) !== 1) return respond(Rcode.FORMERR, [], false, false)
  const name = q.name.toLowerCase().replace(/\.$/, '')
  if (name !== opts.tld && !name.endsWith(`.${opts.tld}`)) return respond(Rcode.REFUSED, [], false, false)
  if (name === opts.tld) return respond(Rcode.NOERROR, q.type === 'SOA' ? [soaRecord(opts.tld, opts.ttl)] : [], true)
  let peer: PeerId
  let service: string
  try {
    const parsed = parseWarrenHost(name, opts.tld)
    service = parsed.kind === 'service' ? parsed.service : ''
    peer = opts.resolvePeer(parsed.node)
  } catch {
    return respond(Rcode.NXDOMAIN, [], true)
  }
  const addrs = opts.addresses.tryAddressesOf(peer, service)
  // the table is full (dns.maxNames): a new name gets no address rather than one taken from another name
  if (addrs === undefined) return respond(Rcode.SERVFAIL, [], false)
  const answers: Answer[] = []
  const qtype: string = q.type // dns-packet decodes ANY (255) though its types omit it
  if (qtype === 'A' || qtype === 'ANY') answers.push({ type: 'A', name: q.name, ttl: opts.ttl, data: addrs.ipv4 })
  if (qtype === 'AAAA' || qtype === 'ANY') {
    answers.push({ type: 'AAAA', name: q.name, ttl: opts.ttl, data: addrs.ipv6 })
  }
  return respond(Rcode.NOERROR, answers, answers.length === 0)
}

function soaRecord(tld: string, ttl: number): Answer {
  return {
    type: 'SOA',
    name: tld,
    ttl,
    data: {
      mname: `ns.${tld}`,
      rname: `hostmaster.${tld}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86_400,
      minimum: ttl,
    },
  }
}

export class DnsServer {
  readonly #opts: DnsServerOptions
  readonly #udp: UdpSocket
  readonly #tcp: Server
  readonly #conns = new Set<Socket>()
  readonly #users: LocalUserGate
  #listen = ''

  private constructor(opts: DnsServerOptions, family: 4 | 6) {
    this.#opts = opts
    this.#udp = createSocket(family === 6 ? 'udp6' : 'udp4')
    this.#udp.on('message', (msg, rinfo) => {
      const out = this.#handle(msg)
      if (out !== undefined) this.#udp.send(dnsPacket.encode(out), rinfo.port, rinfo.address)
    })
    this.#udp.on('error', (err) => this.#log('warn', `dns udp: ${err.message}`))
    this.#users = new LocalUserGate({
      allowOtherUsers: opts.allowOtherUsers === true,
      what: 'the DNS server (TCP)',
      ...(opts.log === undefined ? {} : { log: opts.log }),
    })
    this.#tcp = createServer((socket) => this.#onTcp(socket))
  }

  /**
   * Binds UDP and TCP on the same address and port; throws ERR_LISTEN_FAILED. With port 0 the UDP port is chosen
   * first, and a TCP port of that number taken by something else means trying another one (a few times).
   */
  static async start(opts: DnsServerOptions): Promise<DnsServer> {
    const want = parseListenAddress(opts.listen)
    for (let attempt = 1; ; attempt++) {
      try {
        return await DnsServer.#bind(opts, want)
      } catch (err) {
        const taken = (err as { cause?: { code?: unknown } }).cause?.code === 'EADDRINUSE'
        if (want.port !== 0 || !taken || attempt === 8) throw err
      }
    }
  }

  static async #bind(opts: DnsServerOptions, want: ReturnType<typeof parseListenAddress>): Promise<DnsServer> {
    const server = new DnsServer(opts, isIPv6(want.host) ? 6 : 4)
    const fail = (proto: string) => (err: NodeJS.ErrnoException) =>
      new WarrenError(
        'ERR_LISTEN_FAILED',
        `cannot open the DNS server on ${proto} ${formatListenAddress(want)}: ${err.code === 'EADDRINUSE' ? 'address in use' : err.message}`,
        { hint: 'Set another dns.listen in config.json, or stop what uses that port.', cause: err },
      )
    const port = await new Promise<number>((resolve, reject) => {
      server.#udp.once('error', (e) => reject(fail('UDP')(e)))
      server.#udp.bind(want.port, want.host, () => resolve(server.#udp.address().port))
    })
    try {
      await new Promise<void>((resolve, reject) => {
        server.#tcp.once('error', (e) => reject(fail('TCP')(e)))
        server.#tcp.listen(port, want.host, () => resolve())
      })
    } catch (err) {
      server.#udp.close()
      throw err
    }
    server.#tcp.on('error', (err) => server.#log('warn', `dns tcp: ${err.message}`))
    server.#listen = formatListenAddress({ host: want.host, port })
    server.#log('info', `DNS server for .${opts.tld} on ${server.#listen} (UDP and TCP)`)
    return server
  }

  get listen(): string {
    return this.#listen
  }

  #log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void {
    this.#opts.log?.(level, msg)
  }

  /** The answer to one packet, or undefined (no answer); never throws, whatever the packet. */
  #handle(msg: Buffer): Packet | undefined {
    try {
      return this.#answer(msg)
    } catch (err) {
      this.#log('warn', `dns: cannot answer a query: ${(err as Error).message}`)
      return msg.length < 2
        ? undefined
        : { type: 'response', id: msg.readUInt16BE(0), flags: Rcode.SERVFAIL, questions: [] }
    }
  }

  #answer(msg: Buffer): Packet | undefined {
    let query: Packet
    try {
      query = dnsPacket.decode(msg)
    } catch {
      // too broken to answer: a FORMERR needs at least the id
      if (msg.length < 2) return undefined
      return { type: 'response', id: msg.readUInt16BE(0), flags: Rcode.FORMERR, questions: [] }
    }
    if (query.type !== 'query') return undefined
    const out = answerQuery(query, this.#opts)
    if (((out.flags ?? 0) & 0xf) === Rcode.SERVFAIL) this.#tableFull()
    return out
  }

  #fullWarnedAt = 0

  /** Says once a minute that new names get SERVFAIL. */
  #tableFull(): void {
    const now = Date.now()
    if (now - this.#fullWarnedAt < 60_000) return
    this.#fullWarnedAt = now
    this.#log(
      'warn',
      `dns: ${this.#opts.addresses.size} names have service addresses (dns.maxNames): new names get SERVFAIL until the daemon restarts`,
    )
  }

  #onTcp(socket: Socket): void {
    this.#conns.add(socket)
    socket.on('close', () => this.#conns.delete(socket))
    socket.on('error', () => {})
    if (this.#users.active) {
      void this.#users.admit(socket).then((ok) => {
        if (ok !== false) this.#serveTcp(socket)
      })
      return
    }
    this.#serveTcp(socket)
  }

  #serveTcp(socket: Socket): void {
    socket.setTimeout(10_000, () => socket.destroy())
    let buf = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0)
        const out = this.#handle(buf.subarray(2, 2 + len))
        buf = buf.subarray(2 + len)
        // a client that does not read its answers is not read either: they cannot pile up here
        if (out !== undefined && !socket.write(dnsPacket.streamEncode(out)) && !socket.isPaused()) {
          socket.pause()
          socket.once('drain', () => socket.resume())
        }
      }
    })
  }

  async close(): Promise<void> {
    for (const s of this.#conns) s.destroy()
    await Promise.all([
      new Promise<void>((r) => this.#udp.close(() => r())),
      new Promise<void>((r) => this.#tcp.close(() => r())),
    ])
  }
}
