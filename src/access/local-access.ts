/**
 * A node's local ways in: the access port (SOCKS5, HTTP proxy, PAC and gateway on one port), the optional
 * `.warren` DNS server and the optional transparent mode (src/access/transparent: it turns the DNS server on too),
 * started and stopped together as config and start options say.
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
import type { LocalPages } from './local-pages.ts'
import type { AddressTable } from './service-addresses.ts'
import { accessSettings, checkPublicListen, dnsSettings } from './settings.ts'
import { transparentSettings } from './transparent/settings.ts'
import { Transparent, type TransparentStatus } from './transparent/transparent.ts'

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
  /** The node's own pages on the access port (`warren.localhost:<port>`, see local-pages.ts). */
  pages?: LocalPages | undefined
  log: Logger
}

export class LocalAccess {
  #access: AccessServer | undefined
  #dns: DnsServer | undefined
  #transparent: Transparent | undefined

  /** Starts what the config turns on; if one part fails, the parts started are closed again. */
  static async start(opts: LocalAccessOptions): Promise<LocalAccess> {
    const local = new LocalAccess()
    try {
      local.#access = await startAccessPort(opts)
      local.#transparent = await startTransparent(opts)
      local.#dns = await startDns(opts, local.#transparent !== undefined)
      if (local.#transparent !== undefined && local.#dns !== undefined) {
        await local.#transparent.registerNames(local.#dns.listen)
      }
    } catch (err) {
      await local.close()
      throw err
    }
    return local
  }

  status(): { access?: { listen: string }; dns?: { listen: string }; transparent?: TransparentStatus } {
    return {
      ...(this.#access === undefined ? {} : { access: { listen: this.#access.listen } }),
      ...(this.#dns === undefined ? {} : { dns: { listen: this.#dns.listen } }),
      ...(this.#transparent === undefined ? {} : { transparent: this.#transparent.status() }),
    }
  }

  async close(): Promise<void> {
    await this.#transparent?.close()
    this.#transparent = undefined
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
      pages: opts.pages,
    })
  } catch (err) {
    // the default port taken (say, by a second daemon of another home) is no reason not to start
    const explicit = opts.accessListen !== undefined || opts.config.proxy?.listen !== undefined
    if (explicit || !isWarrenError(err, 'ERR_LISTEN_FAILED')) throw err
    opts.log('warn', `${err.message}; the access port is off (set proxy.listen in config.json to use another)`)
    return undefined
  }
}

/** Transparent mode when config or `warren up --transparent` asks for it (see src/access/transparent). */
async function startTransparent(opts: LocalAccessOptions): Promise<Transparent | undefined> {
  const settings = transparentSettings(opts.config)
  if (!settings.enabled) return undefined
  const access = accessSettings(opts.config)
  return Transparent.start({
    settings,
    backend: new AccessBackend(opts.node, { maxStreamsPerPeer: access.maxStreamsPerPeer }),
    addresses: opts.addresses,
    openTimeoutMs: access.openTimeoutMs,
    log: opts.log,
  })
}

/** The DNS server, when config or a start option turns it on, or transparent mode needs names (`withNames`). */
async function startDns(opts: LocalAccessOptions, withNames: boolean): Promise<DnsServer | undefined> {
  const dns = dnsSettings(opts.config)
  if (!dns.enabled && !withNames && opts.dnsListen === undefined) return undefined
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
