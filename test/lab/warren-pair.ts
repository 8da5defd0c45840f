/**
 * Two Warren nodes behind two NATs in the lab, with two `warren relay` processes on the public segment: node B (behind
 * router rb) serves a hash service and keeps a home relay; node A (behind ra) sends bytes to it by B's ticket. Returns
 * what A saw (answer, checksum, path, upgrade) and the routers' counters over the transfer, so a test can tell a direct
 * path (bytes router ↔ router) from a relayed one (bytes through a relay host).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import { type Counter, createLab, type NatKind } from '../../src/testing/natlab/index.ts'
import { type LineChannel, type LineMessage, lineChannel } from '../../src/testing/natlab/lines.ts'

const MAIN = resolve('src/cli/main.ts')
const NODE_SCRIPT = resolve('test/relay/fixtures/lab-node.ts')
export const RELAY_HOSTS = ['relay', 'relay2'] as const

export interface PairRun {
  result: LineMessage
  relays: { host: string; id: string }[]
  /** B's home relay. */
  home: { host: string; id: string }
  /** Bytes a router counter moved during the transfer. */
  seen(router: 'ra' | 'rb', counter: string): number
  /** Bytes that went router ↔ router directly, both routers, both directions. */
  directBytes: number
  /** stderr of every process, by host. */
  logs: Record<string, string[]>
}

function channel(child: ChildProcess, name: string, stderr: string[]): LineChannel {
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  return lineChannel(child.stdout!, child.stdin!, name)
}

async function expect(chan: LineChannel, type: string, timeoutMs: number, stderr: string[]): Promise<LineMessage> {
  const got = await Promise.race([chan.next(type, timeoutMs), chan.next('error', timeoutMs + 1000)]).catch(
    (err: Error) => {
      throw new Error(`${err.message}\n${stderr.join('')}`)
    },
  )
  if (got.type === 'error') throw new Error(`${String(got.message)}\n${stderr.join('')}`)
  return got
}

const delta = (before: Record<string, Counter>, after: Record<string, Counter>, name: string): number =>
  (after[name]?.bytes ?? 0) - (before[name]?.bytes ?? 0)

/** Builds the lab, runs one transfer of `bytes` from A to B, tears everything down. */
export async function runWarrenPair(opts: {
  natA: NatKind
  natB: NatKind
  bytes: number
  /** Let the direct-path upgrade settle for up to this long before sending (undefined: send at once). */
  waitDirectMs?: number
}): Promise<PairRun> {
  const homes: string[] = []
  const lab = await createLab({ natA: opts.natA, natB: opts.natB, publicHosts: [...RELAY_HOSTS] })
  try {
    const logs: Record<string, string[]> = {}
    // B is on both relays' allow list (unlimited circuits); A is not, and needs not be: limits follow B's reservation
    const bKey = await generateNodeKey()
    const keyDir = await mkdtemp(join(tmpdir(), 'warren-lab-node-'))
    homes.push(keyDir)
    const bKeyFile = join(keyDir, 'key')
    await saveNodeKey(bKeyFile, bKey)
    const bId = peerIdFromPrivateKey(bKey).toString()

    const relays = await Promise.all(
      RELAY_HOSTS.map(async (host) => {
        const home = await mkdtemp(join(tmpdir(), 'warren-lab-relay-'))
        homes.push(home)
        logs[host] = []
        const args = ['--home', home, 'relay', '--json', '--listen', '/ip4/0.0.0.0/tcp/4001', '--allow', bId]
        const chan = channel(lab.spawnNode(host, MAIN, args), `relay on ${host}`, logs[host])
        const ready = await expect(chan, 'text', 45_000, logs[host])
        const id = (JSON.parse(String(ready.text)) as { id: string }).id
        return { host, id, addr: `/ip4/${lab.address(host)}/tcp/4001/p2p/${id}` }
      }),
    )
    const relayAddrs = relays.map((r) => r.addr)

    logs.b = []
    const b = channel(lab.spawnNode('b', NODE_SCRIPT, ['serve', bKeyFile, ...relayAddrs]), 'node b', logs.b)
    const ready = await expect(b, 'ready', 45_000, logs.b)
    const home = relays.find((r) => r.id === (ready.relay as { home: string }).home)
    if (home === undefined) throw new Error(`B has no home relay: ${JSON.stringify(ready.relay)}`)

    logs.a = []
    const a = channel(lab.spawnNode('a', NODE_SCRIPT, ['send', ...relayAddrs]), 'node a', logs.a)
    const before = { ra: await lab.counters('ra'), rb: await lab.counters('rb') }
    a.send({ type: 'send', ticket: String(ready.ticket), bytes: opts.bytes, waitDirectMs: opts.waitDirectMs })
    const result = await expect(a, 'result', 90_000, logs.a)
    const after = { ra: await lab.counters('ra'), rb: await lab.counters('rb') }
    a.send({ type: 'finish' })
    b.send({ type: 'finish' })
    const seen = (r: 'ra' | 'rb', name: string): number => delta(before[r], after[r], name)
    const directBytes = seen('ra', 'out_peer') + seen('ra', 'in_peer') + seen('rb', 'out_peer') + seen('rb', 'in_peer')
    return { result, relays, home, seen, directBytes, logs }
  } finally {
    await lab.close()
    await Promise.all(homes.map((h) => rm(h, { recursive: true, force: true })))
  }
}
