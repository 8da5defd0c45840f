/**
 * A node's local ways in: the access port (SOCKS5, HTTP proxy, PAC and gateway on one port) and the
 * optional `.warren` DNS server, started and stopped together as config and start options say.
 *
 * @example
 * ```ts
 * const access = await LocalAccess.start({ config, node, addresses, addressBook, log })
 * access.status()   // { access: { listen: '127.0.0.1:4780' } }
 * await access.close()
 * ```
 */

import type { Config } from '../config/schema.ts'
import { isWarrenError } from '../errors.ts'
import type { AddressBook } from '../identity/address-book.ts'
import type { Logger } from '../log.ts'
import { AccessServer } from './access-server.ts'
import { AccessBackend, type NodeForAccess } from './backend.ts'
import { DnsServer } from './dns-server.ts'
import type { AddressTable } from './service-addresses.ts'
import { accessSettings, checkPublicListen, dnsSettings } from './settings.ts'

export interface LocalAccessOptions {
  config: Config
  /** The node the access port reaches services through (an {@link AccessBackend} is built on it). */
  node: NodeForAccess
  addresses: AddressTable
  addressBook: AddressBook
  /** Overrides proxy.listen; `false` turns the access port off. */
  accessListen?: string | false | undefined
  /** Overrides dns.listen and turns the DNS server on. */
  dnsListen?: string | undefined
  /** Overrides whether the access port uses the gateway fast path (default: on unless WARREN_GATEWAY_FAST_PATH=0). */
  gatewayFastPath?: boolean | undefined
  log: Logger
}

export class LocalAccess {
  #access: AccessServer | undefined
  #dns: DnsServer | undefined

  /** Starts what the config turns on; if the DNS server fails, the access port is closed again. */
  static async start(opts: LocalAccessOptions): Promise<LocalAccess> {
    const local = new LocalAccess()
    try {
      local.#access = await startAccessPort(opts)
      local.#dns = await startDns(opts)
    } catch (err) {
      await local.close()
      throw err
    }
    return local
  }

  status(): { access?: { listen: string }; dns?: { listen: string } } {
    return {
      ...(this.#access === undefined ? {} : { access: { listen: this.#access.listen } }),
      ...(this.#dns === undefined ? {} : { dns: { listen: this.#dns.listen } }),
    }
  }

  async close(): Promise<void> {
    await this.#access?.close()
    await this.#dns?.close()
    this.#access = undefined
    this.#dns = undefined
  }
}

async function startAccessPort(opts: LocalAccessOptions): Promise<AccessServer | undefined> {
  const access = accessSettings(opts.config)
  const listen = opts.accessListen ?? access.listen
  if (!access.enabled || listen === false) return undefined
  try {
    return await AccessServer.start({
      settings: { ...access, listen, fastPath: opts.gatewayFastPath ?? access.fastPath },
      backend: new AccessBackend(opts.node, { maxStreamsPerPeer: access.maxStreamsPerPeer }),
      addresses: opts.addresses,
      log: opts.log,
    })
  } catch (err) {
    // the default port taken (say, by a second daemon of another home) is no reason not to start
    const explicit = opts.accessListen !== undefined || opts.config.proxy?.listen !== undefined
    if (explicit || !isWarrenError(err, 'ERR_LISTEN_FAILED')) throw err
    opts.log('warn', `${err.message}; the access port is off (set proxy.listen in config.json to use another)`)
    return undefined
  }
}

async function startDns(opts: LocalAccessOptions): Promise<DnsServer | undefined> {
  const dns = dnsSettings(opts.config)
  if (!dns.enabled && opts.dnsListen === undefined) return undefined
  opts.addresses.maxNames = dns.maxNames
  // claim the aliases' node addresses in a fixed order, so the same config gives the same table
  for (const alias of Object.keys(opts.config.peers).sort()) {
    opts.addresses.addressesOf(opts.addressBook.resolve(alias).id)
  }
  const listen = opts.dnsListen ?? dns.listen
  const warning = checkPublicListen(
    'the DNS server',
    listen,
    dns.public,
    'Set "public": true under "dns" in config.json',
    'anyone who can reach it can look up the names and service addresses this node knows',
  )
  if (warning !== undefined) opts.log('warn', warning)
  return DnsServer.start({
    listen,
    tld: dns.tld,
    ttl: dns.ttl,
    addresses: opts.addresses,
    allowOtherUsers: dns.allowOtherUsers,
    resolvePeer: (label) => opts.addressBook.resolve(label).id,
    log: opts.log,
  })
}
