/**
 * What transparent mode has on the system right now, read without changing anything (for `warren netcheck` /
 * `warren doctor`): the nftables table `inet warren` and the interface with their owners, and what systemd-resolved
 * has for the interface. Reading the table needs CAP_NET_ADMIN; without it the table's state is `unknown`.
 */
import { WarrenError } from '../../errors.ts'
import { alive, linkAlias, NFT_TABLE, type Owner, parseTag } from './capture.ts'
import { type ResolverSystem, resolvedLink, SYSTEM_RESOLVER } from './resolver.ts'
import { runTool, type ToolRunner } from './tools.ts'

/** A table or interface Warren adds: there or not, and the daemon that added it. */
export interface SystemItem {
  state: 'present' | 'absent' | 'unknown'
  /** Why the state is unknown (the tool's message). */
  reason?: string
  /** The daemon named in its comment or alias, and whether it still runs. */
  owner?: { pid: number; running: boolean }
}

export interface SystemProbe {
  table: SystemItem
  interface: SystemItem & { name: string }
  /** Whether systemd-resolved runs, and what it has for the interface (DNS servers, routing domains). */
  resolved: { running: boolean; dns?: string[]; domains?: string[] }
}

function owned(owner: Owner | undefined): Pick<SystemItem, 'owner'> {
  return owner === undefined ? {} : { owner: { pid: owner.pid, running: alive(owner) } }
}

/** Table `inet warren`, read with `nft list table`. */
async function probeTable(run: ToolRunner): Promise<SystemItem> {
  try {
    const res = await run('nft', ['list', 'table', 'inet', NFT_TABLE])
    return { state: 'present', ...owned(parseTag(/^\s*comment "([^"]*)"/m.exec(res.stdout)?.[1])) }
  } catch (err) {
    const stderr = err instanceof WarrenError ? String(err.details?.stderr ?? '') : ''
    if (/No such file or directory/i.test(stderr)) return { state: 'absent' }
    return { state: 'unknown', reason: stderr.split('\n')[0] || (err as Error).message }
  }
}

/** Reads the table, the interface `iface` and resolved's view of it. */
export async function probeSystem(
  iface: string,
  opts: { run?: ToolRunner; resolver?: ResolverSystem } = {},
): Promise<SystemProbe> {
  const resolver = opts.resolver ?? SYSTEM_RESOLVER
  const table = await probeTable(opts.run ?? runTool)
  const alias = await linkAlias(iface)
  const link: SystemProbe['interface'] =
    alias === undefined
      ? { name: iface, state: 'absent' }
      : { name: iface, state: 'present', ...owned(parseTag(alias)) }
  const running = resolver.running()
  const seen = running ? await resolvedLink(iface, resolver) : undefined
  return { table, interface: link, resolved: { running, ...(seen ?? {}) } }
}
