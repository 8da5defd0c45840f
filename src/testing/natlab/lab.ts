/**
 * The NAT lab: network namespaces joined by veth pairs and a bridge, two home-style NAT routers made with nftables, and
 * helpers to run commands and processes inside them and to read the routers' counters and conntrack tables.
 *
 * ```ts
 * const lab = await createLab({ natA: 'cone', natB: 'symmetric', publicHosts: ['relay', 'relay2'] })
 * try {
 *   const child = lab.spawnNode('a', 'src/testing/natlab/udx-peer.ts', ['--role', 'send'])
 *   const counters = await lab.counters('ra')
 * } finally {
 *   await lab.close()
 * }
 * ```
 *
 * Every veth is created directly inside its namespaces, so deleting the namespaces removes every interface and nft
 * table the lab made; nothing is left in the root namespace.
 *
 * @packageDocumentation
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process'
import { WarrenError } from '../../errors.ts'
import { type ConntrackEntry, parseConntrack } from './conntrack.ts'
import { type Counter, type CounterTarget, LAB_TABLE, parseCounters, routerRuleset } from './nft.ts'
import { pinnedNode } from './node-bin.ts'
import { cleanupLeftovers, listNamespaces, newLabPrefix, registerLab, unregisterLab } from './registry.ts'
import { type RunResult, run } from './shell.ts'
import { checkHostName, type NatKind, publicHostAddress, ROUTERS, type RouterName } from './topology.ts'

export interface LabOptions {
  /** NAT kind of router `ra` (host `a` sits behind it). Default 'cone'. */
  natA?: NatKind
  /** NAT kind of router `rb` (host `b` sits behind it). Default 'cone'. */
  natB?: NatKind
  /** Hosts on the public segment, first at 198.18.0.1, then .4, .5 …. Default ['relay']. */
  publicHosts?: readonly string[]
  /** TCP ports router `rb` forwards from its WAN address to host `b` ("port forwarding"; UDP stays NATed). */
  forwardTcpToB?: readonly number[]
}

export interface LabHost {
  /** Exact namespace name. */
  ns: string
  /** The host's own address (for LAN hosts, the private LAN address). */
  address: string
}

export interface Lab {
  /** Namespace name prefix, unique to this lab. */
  readonly prefix: string
  readonly natA: NatKind
  readonly natB: NatKind
  /** Every host by name: public hosts, `ra`, `rb`, `a`, `b`, and the switch `sw`. */
  readonly hosts: Readonly<Record<string, LabHost>>
  /** The address of a host (public hosts and LAN hosts; for routers the WAN address). */
  address(host: string): string
  /** Runs a command in a host; a string runs through `sh -c`. Rejects with ERR_LAB on a non-zero exit. */
  exec(host: string, cmd: string | readonly string[], timeoutMs?: number): Promise<RunResult>
  /** Starts a process inside a host's namespace (`ip netns exec <ns> argv…`); it is killed on {@link close}. */
  spawn(host: string, argv: readonly string[], options?: SpawnOptions): ChildProcess
  /** Starts the pinned Node with a script (absolute or relative to the cwd) inside a host's namespace. */
  spawnNode(host: string, script: string, args?: readonly string[], options?: SpawnOptions): ChildProcess
  /** Named nft counters of a router: `out_<peer>`/`in_<peer>` per remote, `fwd_*`, `drop_*`. */
  counters(router: RouterName): Promise<Record<string, Counter>>
  /** The router's conntrack table. */
  conntrack(router: RouterName): Promise<ConntrackEntry[]>
  /** Exact names of every namespace this lab created. */
  namespaces(): readonly string[]
  /** Kills spawned processes and deletes every namespace by exact name. Idempotent. */
  close(): Promise<void>
}

function nsCmd(ns: string, argv: readonly string[]): string[] {
  return ['netns', 'exec', ns, ...argv]
}

/** Builds a lab. On any failure while building, everything made so far is removed before the error is thrown. */
export async function createLab(options: LabOptions = {}): Promise<Lab> {
  const natA = options.natA ?? 'cone'
  const natB = options.natB ?? 'cone'
  const publicNames = options.publicHosts ?? ['relay']
  if (publicNames.length === 0) throw new RangeError('a lab needs at least one public host (for the relay/STUN)')
  for (const n of publicNames) checkHostName(n)
  if (new Set(publicNames).size !== publicNames.length) throw new RangeError('public host names must be unique')

  cleanupLeftovers()
  const prefix = newLabPrefix()
  const hosts: Record<string, LabHost> = {}
  const created: string[] = []
  const children = new Set<ChildProcess>()
  let closed = false

  const killChildren = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    children.clear()
  }
  const live = { namespaces: () => created, killChildren }
  registerLab(live)

  const ip = (args: string[]): Promise<RunResult> => run('ip', args)
  const inNs = (host: string, argv: string[]): Promise<RunResult> => run('ip', nsCmd(hosts[host]!.ns, argv))

  const addNs = async (name: string, address: string): Promise<void> => {
    const ns = prefix + name
    await ip(['netns', 'add', ns])
    created.push(ns)
    hosts[name] = { ns, address }
    await ip(['-n', ns, 'link', 'set', 'lo', 'up'])
  }

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    killChildren()
    const errors: string[] = []
    for (const ns of [...created].reverse()) {
      try {
        await ip(['netns', 'del', ns])
      } catch (err) {
        if (listNamespaces().includes(ns)) errors.push((err as Error).message)
      }
    }
    unregisterLab(live)
    if (errors.length > 0) {
      throw new WarrenError('ERR_LAB', `lab teardown left namespaces behind: ${errors.join('; ')}`, {
        hint: `Delete them by hand with \`ip netns del <name>\` (names start with ${prefix}).`,
      })
    }
  }

  try {
    await addNs('sw', '')
    const sw = hosts.sw!.ns
    await ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge'])
    await ip(['-n', sw, 'link', 'set', 'br0', 'up'])

    // Public segment: each public host and each router WAN gets a veth whose far end is a bridge port in `sw`.
    let port = 0
    const plug = async (name: string, ifname: string, cidr: string): Promise<void> => {
      const swPort = `p${port++}`
      await ip(['link', 'add', ifname, 'netns', hosts[name]!.ns, 'type', 'veth', 'peer', 'name', swPort, 'netns', sw])
      await ip(['-n', sw, 'link', 'set', swPort, 'master', 'br0', 'up'])
      await ip(['-n', hosts[name]!.ns, 'addr', 'add', cidr, 'dev', ifname])
      await ip(['-n', hosts[name]!.ns, 'link', 'set', ifname, 'up'])
    }
    for (const [i, name] of publicNames.entries()) {
      await addNs(name, publicHostAddress(i))
      await plug(name, 'eth0', `${publicHostAddress(i)}/24`)
    }
    for (const r of ROUTERS) {
      await addNs(r.name, r.wan)
      await plug(r.name, 'wan', `${r.wan}/24`)
      await addNs(r.host, r.hostAddress)
      const rns = hosts[r.name]!.ns
      const hns = hosts[r.host]!.ns
      await ip(['link', 'add', 'lan', 'netns', rns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hns])
      await ip(['-n', rns, 'addr', 'add', `${r.lanGateway}/24`, 'dev', 'lan'])
      await ip(['-n', rns, 'link', 'set', 'lan', 'up'])
      await ip(['-n', hns, 'addr', 'add', `${r.hostAddress}/24`, 'dev', 'eth0'])
      await ip(['-n', hns, 'link', 'set', 'eth0', 'up'])
      await ip(['-n', hns, 'route', 'add', 'default', 'via', r.lanGateway])
    }
    // Routes to each LAN via its router, from every public host and from the other router. Behind a NAT the router
    // drops such unsolicited packets; behind 'none' they are how the LAN host is reached.
    for (const r of ROUTERS) {
      const others = [...publicNames, ...ROUTERS.filter((o) => o.name !== r.name).map((o) => o.name)]
      for (const o of others) await ip(['-n', hosts[o]!.ns, 'route', 'add', r.lanCidr, 'via', r.wan])
    }
    for (const r of ROUTERS) {
      // Per-namespace sysctl, written directly so that procps need not be installed.
      await inNs(r.name, ['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward'])
      const targets: CounterTarget[] = [
        ...publicNames.map((n, i) => ({ label: n, address: publicHostAddress(i) })),
        ...ROUTERS.filter((o) => o.name !== r.name).map((o) => ({ label: 'peer', address: o.wan })),
      ]
      const kind = r.name === 'ra' ? natA : natB
      const forward = { host: r.hostAddress, tcpPorts: r.name === 'rb' ? (options.forwardTcpToB ?? []) : [] }
      await run('ip', nsCmd(hosts[r.name]!.ns, ['nft', '-f', '-']), { input: routerRuleset(kind, targets, forward) })
      // Byte counts in conntrack entries (the table exists once the ruleset above loaded conntrack).
      await inNs(r.name, ['sh', '-c', 'echo 1 > /proc/sys/net/netfilter/nf_conntrack_acct'])
    }
  } catch (err) {
    await close().catch(() => undefined)
    throw err
  }

  const hostOf = (name: string): LabHost => {
    const h = hosts[name]
    if (h === undefined) {
      throw new WarrenError('ERR_LAB', `the lab has no host named '${name}'`, {
        hint: `Use one of: ${Object.keys(hosts).join(', ')}.`,
      })
    }
    return h
  }

  const spawnIn = (host: string, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess => {
    if (closed) throw new WarrenError('ERR_LAB', 'the lab is already closed', { hint: 'Spawn before lab.close().' })
    const child = spawn('ip', nsCmd(hostOf(host).ns, argv), { stdio: ['pipe', 'pipe', 'pipe'], ...opts })
    children.add(child)
    child.once('exit', () => children.delete(child))
    return child
  }

  return {
    prefix,
    natA,
    natB,
    hosts,
    address: (host) => {
      const h = hostOf(host)
      if (h.address === '')
        throw new WarrenError('ERR_LAB', `lab host '${host}' has no address`, { hint: 'Ask a host.' })
      return h.address
    },
    exec: (host, cmd, timeoutMs) =>
      run('ip', nsCmd(hostOf(host).ns, typeof cmd === 'string' ? ['sh', '-c', cmd] : cmd), { timeoutMs }),
    spawn: spawnIn,
    spawnNode: (host, script, args = [], opts) => spawnIn(host, [pinnedNode(), script, ...args], opts),
    counters: async (router) => {
      const { stdout } = await run(
        'ip',
        nsCmd(hostOf(router).ns, ['nft', '-j', 'list', 'counters', 'table', 'inet', LAB_TABLE]),
      )
      return parseCounters(stdout)
    },
    conntrack: async (router) => {
      const { stdout } = await run('ip', nsCmd(hostOf(router).ns, ['conntrack', '-L']))
      return parseConntrack(stdout)
    },
    namespaces: () => [...created],
    close,
  }
}

/**
 * Whether this machine can build a lab: root, `ip netns add`, nft and conntrack. Tests call it to skip with a clear
 * reason instead of failing where namespaces are not permitted.
 */
export async function labSupport(): Promise<{ ok: true } | { ok: false; reason: string }> {
  for (const tool of ['ip', 'nft', 'conntrack']) {
    try {
      await run('sh', ['-c', `command -v ${tool}`])
    } catch {
      return { ok: false, reason: `${tool} is not installed (apt-get install -y iproute2 nftables conntrack)` }
    }
  }
  const probe = `${newLabPrefix()}probe`
  try {
    await run('ip', ['netns', 'add', probe])
  } catch (err) {
    return { ok: false, reason: `\`ip netns add\` is not permitted here (${(err as Error).message}); run as root` }
  }
  await run('ip', ['netns', 'del', probe]).catch(() => undefined)
  return { ok: true }
}
