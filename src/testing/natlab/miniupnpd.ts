/**
 * A port mapper on a lab router: Debian's `miniupnpd` (the nftables build) answering PCP, NAT-PMP and UPnP IGD on the
 * router's LAN side, the way a home router does.
 *
 * ```ts
 * const upnp = await startMiniupnpd(lab, 'rb')                  // maps for host b
 * await upnp.mappings()                                          // the DNAT rules it holds now
 * await upnp.restart()                                           // a router reboot: mappings and conntrack gone
 * await upnp.stop()
 * ```
 *
 * Each router gets its own config file in a temp dir and its own nft table `miniupnpd` (separate from the lab table, so
 * the lab's counters and NAT stay as they are): a prerouting chain with the port mappings' DNAT rules and a forward
 * chain miniupnpd writes into but that does not hook; the lab table's forward chain gains one rule that lets DNATed
 * packets through, before its final drop. Lab WAN addresses are reserved (198.18.0.0/15), on which miniupnpd
 * refuses to map unless STUN says the address is reachable: a tiny responder on the router's own WAN address
 * (miniupnpd-stun.ts) tells it so. `refuse: true` writes a `deny` rule for every client: the router answers every
 * request with an error.
 *
 * miniupnpd runs as a router runs it: a daemon logging at `info` (`-v`), not in its debug mode (`-d`). In debug mode it
 * logs every line at `debug` to stderr and to the console, and a refused PCP or NAT-PMP request makes it try every
 * external port against its permission rules, one `debug` line each: 65535 lines per request, seconds of CPU and
 * requests left unanswered meanwhile, which starves everything else on a small machine. The daemon runs inside its own
 * PID and mount namespaces (`unshare`), under a small shell that is their first process: killing that shell (the lab's
 * close, {@link Miniupnpd.stop}, a reboot) kills the daemon with it. There `/dev/console`, where syslog writes when no
 * syslog daemon listens, is a FIFO in the temp dir whose lines the shell relays to the lab: {@link Miniupnpd.log}.
 *
 * @packageDocumentation
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WarrenError } from '../../errors.ts'
import type { Lab } from './lab.ts'
import { reap } from './lines.ts'
import { LAB_TABLE } from './nft.ts'
import { run } from './shell.ts'
import { ROUTERS, type RouterName } from './topology.ts'

/** The nft table miniupnpd writes its rules into, in the router's namespace. */
export const MINIUPNPD_TABLE = 'miniupnpd'
/** The UDP port of the STUN responder miniupnpd asks (on the router's own WAN address). */
export const MINIUPNPD_STUN_PORT = 3479

const STUN_SCRIPT = fileURLToPath(new URL('./miniupnpd-stun.ts', import.meta.url))

export interface MiniupnpdOptions {
  /** Answer every request with an error (a `deny` rule for everyone). Default false. */
  refuse?: boolean
  /** Shortest lifetime granted, s (PCP/NAT-PMP clamp requests to it). Default 2. */
  minLifetimeS?: number
}

export interface Miniupnpd {
  readonly router: RouterName
  /** The DNAT rules miniupnpd holds now, as `tcp 198.18.0.3:40001 -> 198.19.2.2:40001` lines. */
  mappings(): Promise<string[]>
  /**
   * A router reboot: miniupnpd killed (SIGKILL, as by a power cut), its rules and the router's conntrack table
   * flushed, then, after `downMs` (default 0: at once), started again with an empty lease file. Resolves once it
   * answers again. While it is down, the router still routes and NATs; only its port mapper is gone.
   */
  restart(downMs?: number): Promise<void>
  /** Kills miniupnpd and the STUN responder, removes the table and the temp dir. Idempotent. */
  stop(): Promise<void>
  /** What miniupnpd logged so far (level info and above), a line each, with the time it arrived (for diagnostics). */
  log(): string
}

/** The miniupnpd.conf of `router`. */
export function miniupnpdConfig(router: RouterName, dir: string, opts: MiniupnpdOptions = {}): string {
  const plan = ROUTERS.find((r) => r.name === router)!
  const rules = opts.refuse === true ? [] : [`allow 1024-65535 ${plan.lanCidr} 1024-65535`]
  return [
    'ext_ifname=wan',
    'listening_ip=lan',
    'http_port=0',
    'enable_natpmp=yes',
    'enable_upnp=yes',
    'ext_perform_stun=yes',
    `ext_stun_host=${plan.wan}`,
    `ext_stun_port=${MINIUPNPD_STUN_PORT}`,
    'secure_mode=yes',
    'system_uptime=no', // the PCP epoch counts from miniupnpd's start: a restart shows as a reset
    'notify_interval=30',
    `min_lifetime=${opts.minLifetimeS ?? 2}`,
    'max_lifetime=86400',
    `lease_file=${join(dir, 'leases')}`,
    `upnp_table_name=${MINIUPNPD_TABLE}`,
    `upnp_nat_table_name=${MINIUPNPD_TABLE}`,
    'upnp_forward_chain=forward_miniupnpd',
    'upnp_nat_chain=prerouting_miniupnpd',
    'upnp_nat_postrouting_chain=postrouting_miniupnpd',
    `uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d0${router === 'ra' ? '0a' : '0b'}`,
    ...rules,
    'deny 0-65535 0.0.0.0/0 0-65535',
    '',
  ].join('\n')
}

/** The table miniupnpd fills: DNAT before the lab's own NAT, SNAT before its masquerade. */
function tableRuleset(): string {
  return [
    `table inet ${MINIUPNPD_TABLE} {`,
    '  chain forward_miniupnpd {',
    '  }',
    '  chain prerouting_miniupnpd {',
    '  }',
    '  chain postrouting_miniupnpd {',
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat - 1; policy accept;',
    '    jump prerouting_miniupnpd',
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat - 1; policy accept;',
    '    jump postrouting_miniupnpd',
    '  }',
    '}',
    '',
  ].join('\n')
}

/** Lets packets DNATed by a port mapping through the lab table's forward chain, before its final drop. */
async function allowMapped(lab: Lab, router: RouterName): Promise<void> {
  const { stdout } = await lab.exec(router, ['nft', '-a', 'list', 'chain', 'inet', LAB_TABLE, 'forward'])
  const last = [...stdout.matchAll(/counter name "drop_unsolicited" drop # handle (\d+)/g)].at(-1)
  if (last === undefined) {
    throw new WarrenError('ERR_LAB', `router ${router} has no final drop rule in its forward chain`, {
      hint: 'The lab ruleset changed; update src/testing/natlab/miniupnpd.ts.',
    })
  }
  const rule = 'iifname "wan" oifname "lan" ct status dnat counter name "fwd_in" accept'
  if (stdout.includes('ct status dnat')) return
  await lab.exec(router, `nft insert rule inet ${LAB_TABLE} forward position ${last[1]} ${rule}`)
}

/**
 * The first process of miniupnpd's PID and mount namespaces (`sh -c`, argument: the temp dir): makes `/dev/console` the
 * FIFO `console` and relays its lines to stdout, starts the daemon, prints its pid, and returns when it exits (its
 * exit status then is 1). `/dev/log` is made a dead end where it exists, so that syslog falls back to the console.
 */
const WRAPPER = `
set -eu
dir=$1
rm -f "$dir/pid"
[ -p "$dir/console" ] || mkfifo "$dir/console"
mount --bind "$dir/console" /dev/console
[ ! -e /dev/log ] || mount --bind /dev/null /dev/log
cat <>"$dir/console" &
/usr/sbin/miniupnpd -f "$dir/miniupnpd.conf" -v -P "$dir/pid"
i=0
while [ ! -s "$dir/pid" ]; do
  i=$((i + 1))
  if [ "$i" -gt 150 ]; then echo "miniupnpd wrote no pid file"; exit 1; fi
  sleep 0.1
done
pid=$(cat "$dir/pid")
echo "miniupnpd running, pid $pid"
tail --pid="$pid" -f /dev/null
echo "miniupnpd exited"
exit 1
`

/** How long miniupnpd gets to check its address by STUN and enable port forwarding, ms (a loaded machine is slow). */
const READY_MS = 30_000

/** Starts miniupnpd on `router` and resolves once it listens for PCP/NAT-PMP and has its external address. */
export async function startMiniupnpd(lab: Lab, router: RouterName, opts: MiniupnpdOptions = {}): Promise<Miniupnpd> {
  const plan = ROUTERS.find((r) => r.name === router)!
  const dir = await mkdtemp(join(tmpdir(), `warren-miniupnpd-${router}-`))
  await writeFile(join(dir, 'miniupnpd.conf'), miniupnpdConfig(router, dir, opts))
  let out = ''
  let daemon: ChildProcess | undefined
  let stun: ChildProcess | undefined
  let stopped = false

  const launch = async (): Promise<void> => {
    await lab.exec(router, `nft delete table inet ${MINIUPNPD_TABLE} 2>/dev/null; true`)
    await run('ip', ['netns', 'exec', lab.hosts[router]!.ns, 'nft', '-f', '-'], { input: tableRuleset() })
    await writeFile(join(dir, 'leases'), '')
    const child = lab.spawn(router, [
      ...['unshare', '--pid', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private'],
      ...['sh', '-c', WRAPPER, 'miniupnpd-router', dir],
    ])
    daemon = child
    const from = out.length
    let partial = ''
    await new Promise<void>((resolve, reject) => {
      // every line gets the time it arrived (syslog's own stamp on the console has whole seconds)
      const onData = (d: Buffer): void => {
        const lines = (partial + d.toString().replaceAll('\r', '')).split('\n')
        partial = lines.pop() ?? ''
        const at = new Date().toISOString()
        for (const line of lines) out += `${at} ${line}\n`
        if (/Port forwarding is now enabled|firewall does not block incoming/.test(out.slice(from))) resolve()
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('exit', (code) =>
        reject(new WarrenError('ERR_LAB', `miniupnpd on ${router} exited (${code}): ${out.slice(-2000)}`)),
      )
      setTimeout(
        () => reject(new WarrenError('ERR_TIMEOUT', `miniupnpd on ${router} did not enable port forwarding: ${out}`)),
        READY_MS,
      ).unref()
    })
  }

  /** Kills the namespaces' first process, so the kernel kills the daemon too, and waits until all of it is gone. */
  const kill = async (): Promise<void> => {
    const d = daemon
    daemon = undefined
    if (d === undefined || d.exitCode !== null || d.signalCode !== null) return
    // unshare's only child is the shell; once it is reaped, every process of its PID namespace is gone
    const first = await readFile(`/proc/${d.pid}/task/${d.pid}/children`, 'utf8').catch(() => '')
    const shell = Number(first.trim().split(/\s+/)[0])
    if (Number.isInteger(shell) && shell > 0) {
      try {
        process.kill(shell, 'SIGKILL')
      } catch {
        // already gone
      }
    } else {
      d.kill('SIGKILL')
    }
    await reap(d, 5_000)
  }

  try {
    await allowMapped(lab, router)
    stun = lab.spawnNode(router, STUN_SCRIPT, [plan.wan, String(MINIUPNPD_STUN_PORT)])
    await new Promise<void>((resolve, reject) => {
      stun!.stdout!.once('data', () => resolve())
      stun!.once('exit', (code) =>
        reject(new WarrenError('ERR_LAB', `the STUN responder on ${router} exited (${code})`)),
      )
    })
    await launch()
  } catch (err) {
    await kill()
    stun?.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw err
  }

  return {
    router,
    log: () => out,
    async mappings() {
      const { stdout } = await lab.exec(router, [
        'nft',
        'list',
        'chain',
        'inet',
        MINIUPNPD_TABLE,
        'prerouting_miniupnpd',
      ])
      // `@nh,72,8 0x6` is the IPv4 protocol byte: 6 TCP, 0x11 UDP
      return [...stdout.matchAll(/@nh,72,8 (0x6|0x11) th dport (\d+) dnat ip to ([\d.]+):(\d+)/g)].map(
        (m) => `${m[1] === '0x6' ? 'tcp' : 'udp'} ${plan.wan}:${m[2]} -> ${m[3]}:${m[4]}`,
      )
    },
    async restart(downMs = 0) {
      await kill()
      await lab.exec(router, `nft delete table inet ${MINIUPNPD_TABLE}; conntrack -F; true`)
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs))
      await launch()
    },
    async stop() {
      if (stopped) return
      stopped = true
      await kill()
      if (stun !== undefined && stun.exitCode === null) {
        stun.kill('SIGTERM')
        await reap(stun, 3_000)
      }
      await lab.exec(router, `nft delete table inet ${MINIUPNPD_TABLE}; true`).catch(() => undefined)
      await rm(dir, { recursive: true, force: true })
    },
  }
}
