/**
 * Names for every program: with systemd-resolved running, Warren's DNS server is registered for the `~<tld>`
 * routing domain on Warren's own interface (`resolvectl dns|domain|default-route <iface>`), which resolved forgets
 * when the interface goes; without it, the exact lines for the usual resolvers are logged. Nothing else is
 * touched: not /etc/hosts, not /etc/resolv.conf, not another program's settings.
 */
import { existsSync } from 'node:fs'
import type { Logger } from '../../log.ts'
import { runTool, type ToolRunner } from './tools.ts'

export type ResolverStatus =
  | { kind: 'systemd-resolved'; interface: string; dns: string; domain: string }
  | { kind: 'manual'; reason: string; lines: string[] }

/** True when systemd-resolved runs (its varlink socket exists). */
export function resolvedRunning(): boolean {
  return existsSync('/run/systemd/resolve/io.systemd.Resolve') || existsSync('/run/systemd/resolve/resolv.conf')
}

/** The lines to add to a resolver so that `.<tld>` names go to the DNS server on `listen` (host:port). */
export function manualLines(iface: string, tld: string, listen: string): string[] {
  const i = listen.lastIndexOf(':')
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '')
  const port = listen.slice(i + 1)
  return [
    `systemd-resolved:  resolvectl dns ${iface} ${listen} && resolvectl domain ${iface} '~${tld}' && resolvectl default-route ${iface} false`,
    `dnsmasq (/etc/dnsmasq.d/warren.conf):  server=/${tld}/${host}#${port}`,
    `unbound (unbound.conf):  server: domain-insecure: "${tld}"  and  stub-zone: name: "${tld}" stub-addr: ${host}@${port}`,
    `macOS (/etc/resolver/${tld}):  nameserver ${host}  and  port ${port}`,
  ]
}

/** The system's resolver as registration sees it: whether resolved runs, and how `resolvectl` is run. */
export interface ResolverSystem {
  running(): boolean
  run: ToolRunner
}

export const SYSTEM_RESOLVER: ResolverSystem = { running: resolvedRunning, run: runTool }

/** The `resolvectl` command lines that register `dnsListen` for `~<tld>` on `iface`, in order. */
export function registrationCommands(iface: string, tld: string, dnsListen: string): string[][] {
  return [
    ['dns', iface, dnsListen],
    ['domain', iface, `~${tld}`],
    ['default-route', iface, 'false'],
  ]
}

/**
 * Registers the DNS server for `~<tld>` on `iface` with resolved, or logs the lines to add by hand. A failing
 * `resolvectl` is reverted (`resolvectl revert <iface>`) and falls back to the lines.
 */
export async function registerNames(opts: {
  iface: string
  tld: string
  dnsListen: string
  useResolved: boolean
  log: Logger
  system?: ResolverSystem
}): Promise<ResolverStatus> {
  const system = opts.system ?? SYSTEM_RESOLVER
  const { iface, tld, dnsListen, log } = opts
  const manual = (reason: string): ResolverStatus => {
    const lines = manualLines(iface, tld, dnsListen)
    log('info', `transparent: .${tld} names are not registered with the system resolver (${reason}); add one of:`)
    for (const l of lines) log('info', `  ${l}`)
    return { kind: 'manual', reason, lines }
  }
  if (!opts.useResolved) return manual('transparent.resolved is false')
  if (!system.running()) return manual('systemd-resolved is not running')
  try {
    for (const args of registrationCommands(iface, tld, dnsListen)) await system.run('resolvectl', args)
  } catch (err) {
    await system.run('resolvectl', ['revert', iface]).catch(() => undefined)
    return manual(`resolvectl failed: ${(err as Error).message}`)
  }
  log('info', `transparent: systemd-resolved sends .${tld} names to ${dnsListen} (interface ${iface})`)
  return { kind: 'systemd-resolved', interface: iface, dns: dnsListen, domain: `~${tld}` }
}

/** Takes the registration back (the interface's removal does too; this makes it immediate). */
export async function unregisterNames(
  status: ResolverStatus | undefined,
  system: ResolverSystem = SYSTEM_RESOLVER,
): Promise<void> {
  if (status?.kind === 'systemd-resolved') {
    await system.run('resolvectl', ['revert', status.interface]).catch(() => undefined)
  }
}

/**
 * What resolved has for `iface` (`resolvectl dns|domain <iface>`): its DNS servers and routing domains, or
 * undefined when resolved does not run or does not know the interface.
 */
export async function resolvedLink(
  iface: string,
  system: ResolverSystem = SYSTEM_RESOLVER,
): Promise<{ dns: string[]; domains: string[] } | undefined> {
  if (!system.running()) return undefined
  // `Link 5 (warren0): 127.0.0.1:53` — the values after the interface's name
  const values = (out: string): string[] => {
    const i = out.indexOf('):')
    return (i < 0 ? '' : out.slice(i + 2)).trim().split(/\s+/).filter(Boolean)
  }
  try {
    const dns = await system.run('resolvectl', ['dns', iface])
    const domain = await system.run('resolvectl', ['domain', iface])
    return { dns: values(dns.stdout), domains: values(domain.stdout) }
  } catch {
    return undefined
  }
}
