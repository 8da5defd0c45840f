/**
 * What transparent mode changes on the system, and how it is undone. All of it is Warren's alone:
 *
 * - an nftables table `inet warren` whose `output` nat chain redirects TCP to the two ranges to the local
 *   listeners (127.0.0.1 and ::1), and whose `refuse` chain rejects other protocols to them at once;
 * - an interface (`warren0`, a `dummy` link, or `ifb` where the kernel has no dummy driver) holding the first
 *   address of each range and the routes of both ranges, so they are routable on a host without a default route.
 *
 * The table's comment and the interface's alias carry the owner (`warren pid=<pid> start=<process start time>`):
 * a table whose owner still runs means another daemon captures the ranges (ERR_TRANSPARENT_IN_USE); a table or
 * interface whose owner is gone is a leftover of a crash and is removed before the new one is added. Deleting the
 * interface removes its addresses and routes with it.
 */
import { readFileSync } from 'node:fs'
import { WarrenError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { bigIntToIp, type Cidr, formatCidr } from './cidr.ts'
import { checkNoOverlap } from './route-overlap.ts'
import { runTool, tryTool } from './tools.ts'

export const NFT_TABLE = 'warren'
const TAG = 'warren'

export interface CaptureSpec {
  interface: string
  ipv4Range: Cidr
  ipv6Range: Cidr
  /** The local listeners' ports; `6` absent: IPv6 is not captured. */
  ports: { 4: number; 6?: number | undefined }
  /** Users whose connections are captured; the others' are refused (TCP reset). */
  users: number[] | 'all'
  log: Logger
}

/** The daemon that added a table or interface, from its comment or alias. */
export interface Owner {
  pid: number
  start: string
}

/** The start time of a process (field 22 of /proc/<pid>/stat), or undefined when it does not run. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
  } catch {
    return '?'
  }
}

export function ownTag(): string {
  return `${TAG} pid=${process.pid} start=${processStart(process.pid) ?? '0'}`
}

export function parseTag(text: string | undefined): Owner | undefined {
  const m = /^warren pid=(\d+) start=(\d+)/.exec(text ?? '')
  return m === null ? undefined : { pid: Number(m[1]), start: m[2]! }
}

/** Whether the owner still runs (same pid and process start time). */
export const alive = (o: Owner): boolean => processStart(o.pid) === o.start

/** The comment of table `inet warren`, '' when it has none, undefined when there is no such table. */
export async function tableComment(): Promise<string | undefined> {
  // the text form: `nft -j` leaves table comments out (nftables 1.0.6)
  const res = await tryTool('nft', ['list', 'table', 'inet', NFT_TABLE])
  if (res === undefined) return undefined
  return /^\s*comment "([^"]*)"/m.exec(res.stdout)?.[1] ?? ''
}

/** The alias of interface `name`, '' when it has none, undefined when there is no such interface. */
export async function linkAlias(name: string): Promise<string | undefined> {
  const res = await tryTool('ip', ['-j', 'link', 'show', 'dev', name])
  if (res === undefined) return undefined
  const [link] = JSON.parse(res.stdout) as { ifalias?: string }[]
  return link === undefined ? undefined : (link.ifalias ?? '')
}

function inUse(owner: Owner): WarrenError {
  return new WarrenError(
    'ERR_TRANSPARENT_IN_USE',
    `another Warren daemon (pid ${owner.pid}: ${commandLine(owner.pid)}) already runs in transparent mode on this host`,
    {
      hint: 'Stop that daemon (warren down with its WARREN_HOME), or start this one without --transparent.',
      details: { pid: owner.pid },
    },
  )
}

/** Removes a crashed daemon's table and interface; throws ERR_TRANSPARENT_IN_USE when their owner still runs. */
async function clearLeftovers(iface: string, log: Logger): Promise<void> {
  const comment = await tableComment()
  if (comment !== undefined) {
    const owner = parseTag(comment)
    if (owner !== undefined && alive(owner)) throw inUse(owner)
    const gone = owner === undefined ? 'an unknown process' : `pid ${owner.pid}, no longer running`
    log('warn', `transparent: removing nftables table inet ${NFT_TABLE} left by ${gone}`)
    await runTool('nft', ['delete', 'table', 'inet', NFT_TABLE])
  }
  const alias = await linkAlias(iface)
  if (alias === undefined) return
  const owner = parseTag(alias)
  if (owner === undefined) {
    throw new WarrenError('ERR_TRANSPARENT_SETUP', `the interface ${iface} exists and is not Warren's`, {
      hint: 'Set "transparent": { "interface": "<another name>" } in config.json.',
      details: { interface: iface },
    })
  }
  if (alive(owner)) throw inUse(owner)
  log('warn', `transparent: removing interface ${iface} left by pid ${owner.pid}, no longer running`)
  await runTool('ip', ['link', 'del', 'dev', iface])
}

/** The nft script that creates the table; `create` fails when the table exists, so two daemons cannot both win. */
export function nftScript(spec: CaptureSpec, tag: string): string {
  const v4 = formatCidr(spec.ipv4Range)
  const v6 = formatCidr(spec.ipv6Range)
  const t = `inet ${NFT_TABLE}`
  const who = spec.users === 'all' ? '' : ` meta skuid { ${spec.users.join(', ')} }`
  // redirected packets leave the `output` nat chain addressed to loopback: what still has a range address in the
  // filter chain after it (another user's TCP, any other protocol) is refused at once rather than dropped
  const lines = [
    `create table ${t} { comment "${tag}" ; }`,
    `add chain ${t} output { type nat hook output priority -100 ; policy accept ; }`,
    `add chain ${t} refuse { type filter hook output priority filter ; policy accept ; }`,
  ]
  const family = (ipN: string, range: string, port: number): void => {
    lines.push(`add rule ${t} output ${ipN} daddr ${range} meta l4proto tcp${who} redirect to :${port}`)
    // `ct direction original`: the listener's answers go to the client's source address, which is in the range
    lines.push(
      `add rule ${t} refuse ${ipN} daddr ${range} ct direction original meta l4proto tcp reject with tcp reset`,
    )
    lines.push(`add rule ${t} refuse ${ipN} daddr ${range} ct direction original reject`)
  }
  family('ip', v4, spec.ports[4])
  if (spec.ports[6] !== undefined) family('ip6', v6, spec.ports[6])
  return `${lines.join('\n')}\n`
}

/** The address the interface holds in `range`: its first one, which no service gets. */
const interfaceAddress = (range: Cidr): string => bigIntToIp(range.family, range.base)

export class SystemCapture {
  readonly #spec: CaptureSpec
  readonly #tag: string
  #ipv6 = false

  private constructor(spec: CaptureSpec) {
    this.#spec = spec
    this.#tag = ownTag()
  }

  /** Whether IPv6 is captured (the host may have IPv6 turned off). */
  get ipv6(): boolean {
    return this.#ipv6
  }

  /** Clears leftovers, checks the ranges against the routes, adds table, interface and routes; undoes all on failure. */
  static async install(spec: CaptureSpec): Promise<SystemCapture> {
    await clearLeftovers(spec.interface, spec.log)
    await checkNoOverlap(spec.ipv4Range, 'ipv4Range')
    if (spec.ports[6] !== undefined) await checkNoOverlap(spec.ipv6Range, 'ipv6Range')
    const capture = new SystemCapture(spec)
    try {
      await capture.#addInterface()
      await capture.#addTable()
    } catch (err) {
      await capture.remove()
      throw err
    }
    return capture
  }

  async #addTable(): Promise<void> {
    const spec = { ...this.#spec, ports: { 4: this.#spec.ports[4], 6: this.#ipv6 ? this.#spec.ports[6] : undefined } }
    try {
      await runTool('nft', ['-f', '-'], nftScript(spec, this.#tag))
    } catch (err) {
      const owner = parseTag(await tableComment())
      if (owner !== undefined && owner.pid !== process.pid && alive(owner)) throw inUse(owner)
      throw err
    }
  }

  async #addInterface(): Promise<void> {
    const { interface: iface, ipv4Range, ipv6Range, log } = this.#spec
    const added = await tryTool('ip', ['link', 'add', iface, 'type', 'dummy'])
    if (added === undefined) await runTool('ip', ['link', 'add', iface, 'type', 'ifb'])
    await runTool('ip', ['link', 'set', 'dev', iface, 'alias', this.#tag])
    await runTool('ip', ['link', 'set', 'dev', iface, 'up'])
    await runTool('ip', ['addr', 'add', `${interfaceAddress(ipv4Range)}/32`, 'dev', iface])
    await runTool('ip', ['route', 'add', formatCidr(ipv4Range), 'dev', iface])
    if (this.#spec.ports[6] === undefined) return
    try {
      await runTool('ip', ['-6', 'addr', 'add', `${interfaceAddress(ipv6Range)}/128`, 'dev', iface, 'nodad'])
      await runTool('ip', ['-6', 'route', 'add', formatCidr(ipv6Range), 'dev', iface])
      this.#ipv6 = true
    } catch (err) {
      log('warn', `transparent: IPv6 service addresses are not captured: ${(err as Error).message}`)
    }
  }

  /** Removes the interface (with its addresses and routes) and the table, if they are still this process's. */
  async remove(): Promise<void> {
    const { interface: iface, log } = this.#spec
    const alias = await linkAlias(iface)
    if (alias !== undefined && parseTag(alias)?.pid === process.pid) {
      await runTool('ip', ['link', 'del', 'dev', iface]).catch((err: Error) =>
        log('warn', `transparent: cannot remove interface ${iface}: ${err.message}`),
      )
    }
    const comment = await tableComment()
    if (comment !== undefined && parseTag(comment)?.pid === process.pid) {
      await runTool('nft', ['delete', 'table', 'inet', NFT_TABLE]).catch((err: Error) =>
        log('warn', `transparent: cannot remove nftables table inet ${NFT_TABLE}: ${err.message}`),
      )
    }
  }
}
