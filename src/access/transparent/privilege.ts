/**
 * The privilege transparent mode needs: CAP_NET_ADMIN, to add an interface, routes and an nftables table. Root has it;
 * a user can run the daemon with it through file capabilities on the Node binary (`setcap cap_net_admin+ep`). Such
 * a capability is not passed to the `nft` and `ip` the daemon runs, so {@link ensureNetAdmin} raises it into the
 * ambient set first (capset + prctl through koffi), which child processes inherit.
 */

import { readFileSync, realpathSync } from 'node:fs'
import { createRequire } from 'node:module'
import { WarrenError } from '../../errors.ts'

/** koffi, loaded on first use: a daemon that never needs it never maps it. */
const koffi = (): typeof import('koffi') => createRequire(import.meta.url)('koffi') as typeof import('koffi')

export const CAP_NET_ADMIN = 12
const LINUX_CAPABILITY_VERSION_3 = 0x20080522
const PR_CAP_AMBIENT = 47
const PR_CAP_AMBIENT_RAISE = 2

/** The capability sets of this process from /proc/self/status (Linux). */
export function capabilities(): { effective: bigint; permitted: bigint; ambient: bigint } {
  const status = readFileSync('/proc/self/status', 'utf8')
  const field = (name: string): bigint => {
    const m = new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)
    return m === null ? 0n : BigInt(`0x${m[1]}`)
  }
  return { effective: field('CapEff'), permitted: field('CapPrm'), ambient: field('CapAmb') }
}

const has = (set: bigint, cap: number): boolean => ((set >> BigInt(cap)) & 1n) === 1n

/** The error for a daemon without CAP_NET_ADMIN, with the three ways out. */
export function privilegeError(): WarrenError {
  let node = process.execPath
  try {
    node = realpathSync(node)
  } catch {}
  const uid = process.getuid?.() ?? -1
  return new WarrenError(
    'ERR_TRANSPARENT_PRIVILEGE',
    `transparent mode needs CAP_NET_ADMIN (to add its interface, routes and nftables table), and this daemon (uid ${uid}) does not have it`,
    {
      hint:
        `Run the daemon as root (sudo warren up --transparent), or give Node the capability once: ` +
        `sudo setcap cap_net_admin+ep ${node} ; or start without --transparent and use the access port ` +
        `(curl --socks5-hostname 127.0.0.1:4780 …) or warren forward.`,
      details: { uid, node },
    },
  )
}

/**
 * Throws ERR_TRANSPARENT_PRIVILEGE without CAP_NET_ADMIN; with it but not as root, makes it ambient so the tools
 * the daemon runs have it too.
 */
export function ensureNetAdmin(): void {
  const caps = capabilities()
  if (!has(caps.effective, CAP_NET_ADMIN)) throw privilegeError()
  if (process.getuid?.() === 0 || has(caps.ambient, CAP_NET_ADMIN)) return
  raiseAmbient(CAP_NET_ADMIN)
}

/** Adds `cap` to the inheritable set (allowed: it is permitted) and then to the ambient set of this thread. */
function raiseAmbient(cap: number): void {
  const libc = koffi().load('libc.so.6')
  const capget = libc.func('int capget(_Inout_ uint32_t *hdr, _Inout_ uint32_t *data)')
  const capset = libc.func('int capset(uint32_t *hdr, uint32_t *data)')
  const prctl = libc.func(
    'int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)',
  )
  const hdr = [LINUX_CAPABILITY_VERSION_3, 0]
  // two 32-bit words per set: effective, permitted, inheritable (low word), then the same for the high word
  const data = [0, 0, 0, 0, 0, 0]
  const fail = (what: string): WarrenError => {
    const e = privilegeError()
    return new WarrenError(
      'ERR_TRANSPARENT_PRIVILEGE',
      `${e.message} in a form its tools inherit (${what} failed: errno ${koffi().errno()})`,
      {
        ...(e.hint === undefined ? {} : { hint: e.hint }),
      },
    )
  }
  if (capget(hdr, data) !== 0) throw fail('capget')
  const word = cap < 32 ? 2 : 5
  data[word] = (data[word]! | (1 << (cap % 32))) >>> 0
  if (capset(hdr, data) !== 0) throw fail('capset')
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) !== 0) throw fail('prctl(PR_CAP_AMBIENT_RAISE)')
}
