/**
 * Transparent mode (Linux): every TCP connection from this machine to a service address, on any port, becomes a
 * service stream, with no proxy setting in the application. Capture by nftables `redirect` to local listeners,
 * original destination from conntrack, the same tunnels as SOCKS5; see docs/transparent.md.
 *
 * @example
 * ```ts
 * const t = await Transparent.start({ settings, backend, addresses, openTimeoutMs: 25_000, log })
 * await t.registerNames('127.0.0.1:5380')   // systemd-resolved, or the lines to add by hand
 * t.status()
 * await t.close()                           // table, interface, routes and resolver entry removed
 * ```
 */
import { WarrenError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import type { AccessBackend } from '../backend.ts'
import type { AddressTable } from '../service-addresses.ts'
import { SystemCapture } from './capture.ts'
import { formatCidr } from './cidr.ts'
import { type CaptureCounters, TransparentListener } from './listener.ts'
import { ensureNetAdmin } from './privilege.ts'
import { type ResolverStatus, registerNames, unregisterNames } from './resolver.ts'
import { derivationRanges, type TransparentSettings } from './settings.ts'

export interface TransparentOptions {
  settings: TransparentSettings
  backend: AccessBackend
  addresses: AddressTable
  /** Time to open a service stream, ms. */
  openTimeoutMs: number
  log: Logger
}

export interface TransparentStatus {
  interface: string
  ipv4Range: string
  /** Absent when IPv6 is not captured (no ::1, or IPv6 turned off on the host). */
  ipv6Range?: string
  connections: CaptureCounters
  names?: ResolverStatus
}

export class Transparent {
  readonly #opts: TransparentOptions
  readonly #listener: TransparentListener
  readonly #capture: SystemCapture
  #names: ResolverStatus | undefined

  private constructor(opts: TransparentOptions, listener: TransparentListener, capture: SystemCapture) {
    this.#opts = opts
    this.#listener = listener
    this.#capture = capture
  }

  /**
   * Checks the platform and privilege, sets the address table's ranges, listens, and changes the system
   * (capture.ts). Throws ERR_TRANSPARENT_SETUP, ERR_TRANSPARENT_PRIVILEGE, ERR_TRANSPARENT_IN_USE,
   * ERR_TRANSPARENT_RANGE; nothing is left behind when it throws.
   */
  static async start(opts: TransparentOptions): Promise<Transparent> {
    if (process.platform !== 'linux') {
      throw new WarrenError('ERR_TRANSPARENT_SETUP', `transparent mode needs Linux (this is ${process.platform})`, {
        hint: 'Use the access port (SOCKS5 or HTTP proxy on 127.0.0.1:4780) or warren forward instead.',
      })
    }
    ensureNetAdmin()
    const { settings, log } = opts
    try {
      opts.addresses.useRanges(derivationRanges(settings))
    } catch (err) {
      throw new WarrenError('ERR_INTERNAL', (err as Error).message, { cause: err })
    }
    const listener = await TransparentListener.start({
      backend: opts.backend,
      addresses: opts.addresses,
      tld: settings.tld,
      openTimeoutMs: opts.openTimeoutMs,
      log,
    })
    let capture: SystemCapture
    try {
      capture = await SystemCapture.install({
        interface: settings.interface,
        ipv4Range: settings.ipv4Range,
        ipv6Range: settings.ipv6Range,
        ports: listener.ports,
        users: settings.users,
        log,
      })
    } catch (err) {
      await listener.close()
      throw err
    }
    const v6 = capture.ipv6 ? ` and ${formatCidr(settings.ipv6Range)}` : ''
    log(
      'info',
      `transparent: capturing TCP to ${formatCidr(settings.ipv4Range)}${v6} (interface ${settings.interface})`,
    )
    return new Transparent(opts, listener, capture)
  }

  /** Makes `.<tld>` names resolve through the DNS server on `dnsListen` (see resolver.ts). */
  async registerNames(dnsListen: string): Promise<ResolverStatus> {
    const s = this.#opts.settings
    this.#names = await registerNames({
      iface: s.interface,
      tld: s.tld,
      dnsListen,
      useResolved: s.resolved,
      log: this.#opts.log,
    })
    return this.#names
  }

  status(): TransparentStatus {
    const s = this.#opts.settings
    return {
      interface: s.interface,
      ipv4Range: formatCidr(s.ipv4Range),
      ...(this.#capture.ipv6 ? { ipv6Range: formatCidr(s.ipv6Range) } : {}),
      connections: { ...this.#listener.counters },
      ...(this.#names === undefined ? {} : { names: this.#names }),
    }
  }

  /** Undoes everything: resolver entry, table, interface with its routes, then the listeners. */
  async close(): Promise<void> {
    await unregisterNames(this.#names)
    this.#names = undefined
    await this.#capture.remove()
    await this.#listener.close()
    this.#opts.log('info', 'transparent: capture removed')
  }
}
