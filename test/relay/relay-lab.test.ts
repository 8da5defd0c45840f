/**
 * Relayed service streams in the NAT lab (network namespaces, 198.18.0.0/15 only): two `warren relay` processes on the
 * public segment, node B behind one symmetric NAT serving a hash service, node A behind another sending 64 MiB to it.
 * The path must be reported as relayed, and the routers' counters must show the bytes going to and from the relay,
 * not between the routers.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import { type Counter, createLab, type Lab, labSupport, type RouterName } from '../../src/testing/natlab/index.ts'
import { type LineChannel, type LineMessage, lineChannel } from '../../src/testing/natlab/lines.ts'

const support = await labSupport()
const skip = support.ok ? false : `NAT lab unavailable: ${support.reason}`
const MAIN = resolve('src/cli/main.ts')
const NODE_SCRIPT = resolve('test/relay/fixtures/lab-node.ts')
const BYTES = 64 * 1024 * 1024
const RELAY_HOSTS = ['relay', 'relay2'] as const

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

function delta(before: Record<string, Counter>, after: Record<string, Counter>, name: string): number {
  return (after[name]?.bytes ?? 0) - (before[name]?.bytes ?? 0)
}

describe('relayed service stream through two symmetric NATs (NAT lab)', { skip }, () => {
  it('64 MiB from A to B through the home relay, checksum intact, path relayed, bytes seen at the relay', async (t) => {
    const homes: string[] = []
    let lab: Lab | undefined
    try {
      lab = await createLab({ natA: 'symmetric', natB: 'symmetric', publicHosts: [...RELAY_HOSTS] })
      const l = lab
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
          const child = l.spawnNode(host, MAIN, [
            '--home',
            home,
            'relay',
            '--json',
            '--listen',
            '/ip4/0.0.0.0/tcp/4001',
            '--allow',
            bId,
          ])
          const chan = channel(child, `relay on ${host}`, logs[host])
          const ready = await expect(chan, 'text', 45_000, logs[host])
          const id = (JSON.parse(String(ready.text)) as { id: string }).id
          return { host, id, addr: `/ip4/${l.address(host)}/tcp/4001/p2p/${id}` }
        }),
      )
      const relayAddrs = relays.map((r) => r.addr)

      logs.b = []
      const b = channel(l.spawnNode('b', NODE_SCRIPT, ['serve', bKeyFile, ...relayAddrs]), 'node b', logs.b)
      const ready = await expect(b, 'ready', 45_000, logs.b)
      const home = relays.find((r) => r.id === (ready.relay as { home: string }).home)
      assert.ok(home !== undefined, `B has a home relay: ${JSON.stringify(ready.relay)}`)

      logs.a = []
      const a = channel(l.spawnNode('a', NODE_SCRIPT, ['send', ...relayAddrs]), 'node a', logs.a)
      const before = { ra: await l.counters('ra'), rb: await l.counters('rb') }
      a.send({ type: 'send', ticket: String(ready.ticket), bytes: BYTES })
      const result = await expect(a, 'result', 90_000, logs.a)
      const after = { ra: await l.counters('ra'), rb: await l.counters('rb') }
      a.send({ type: 'finish' })
      b.send({ type: 'finish' })

      assert.equal(result.answer, `${BYTES} ${String(result.sha256)}`, 'B received every byte A sent')
      assert.deepEqual(result.path, {
        kind: 'relay',
        addr: (result.path as { addr: string }).addr,
        relay: home.id,
      })
      assert.match((result.path as { addr: string }).addr, new RegExp(`/p2p/${home.id}/p2p-circuit/p2p/`))

      const seen = (r: RouterName, name: string): number => delta(before[r], after[r], name)
      assert.ok(
        seen('ra', `out_${home.host}`) >= BYTES,
        `router ra sent ${seen('ra', `out_${home.host}`)} bytes to ${home.host}`,
      )
      assert.ok(
        seen('rb', `in_${home.host}`) >= BYTES,
        `router rb got ${seen('rb', `in_${home.host}`)} bytes from ${home.host}`,
      )
      const direct = seen('ra', 'out_peer') + seen('ra', 'in_peer') + seen('rb', 'out_peer') + seen('rb', 'in_peer')
      assert.ok(direct < 1024 * 1024, `only ${direct} bytes went between the routers directly`)
      const mibps = BYTES / 1048576 / (Number(result.ms) / 1000)
      t.diagnostic(
        `relayed 64 MiB through ${home.host} in ${Number(result.ms).toFixed(0)} ms: ${mibps.toFixed(1)} MiB/s; ` +
          `ra→${home.host} ${seen('ra', `out_${home.host}`)} B, ${home.host}→rb ${seen('rb', `in_${home.host}`)} B, router↔router ${direct} B; ` +
          `relayed ping ${Number(result.rttMs).toFixed(1)} ms`,
      )
    } finally {
      await lab?.close()
      await Promise.all(homes.map((h) => rm(h, { recursive: true, force: true })))
    }
  })
})
