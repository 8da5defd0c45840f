import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { cleanupLeftovers, createLab, listNamespaces, pinnedNode } from '../../src/testing/natlab/index.ts'
import { lineChannel } from '../../src/testing/natlab/lines.ts'
import { run } from '../../src/testing/natlab/shell.ts'
import { STUN_PORT } from '../../src/testing/natlab/udx-direct-run.ts'
import { labSkip, useLab } from '../support/lab.ts'

const tool = fileURLToPath(new URL('../../src/testing/natlab/udp-tool.ts', import.meta.url))
const holdLab = fileURLToPath(new URL('../../src/testing/natlab/hold-lab.ts', import.meta.url))

async function rootState(): Promise<{ links: string; tables: string }> {
  const links = (await run('ip', ['-o', 'link', 'show'])).stdout
  const tables = (await run('nft', ['list', 'tables'])).stdout
  return { links, tables }
}

function startHolder(): Promise<{ child: ReturnType<typeof spawn>; namespaces: string[]; prefix: string }> {
  const child = spawn(pinnedNode(), [holdLab], { stdio: ['pipe', 'pipe', 'inherit'] })
  return lineChannel(child.stdout, child.stdin, 'hold-lab')
    .next('up', 15_000)
    .then((m) => ({ child, namespaces: m.namespaces as string[], prefix: String(m.prefix) }))
}

describe('NAT lab lifecycle', { skip: labSkip }, () => {
  it('comes up with every namespace and router table, and tears down completely by exact name', async () => {
    const rootBefore = await rootState()
    const lab = await createLab({ natA: 'cone', natB: 'symmetric', publicHosts: ['relay', 'relay2'] })
    const names = lab.namespaces()
    try {
      assert.deepEqual(
        [...names].sort(),
        ['sw', 'relay', 'relay2', 'ra', 'a', 'rb', 'b'].map((n) => lab.prefix + n).sort(),
      )
      const present = listNamespaces()
      for (const ns of names) assert.ok(present.includes(ns), `${ns} exists`)
      for (const r of ['ra', 'rb']) {
        const { stdout } = await lab.exec(r, ['nft', 'list', 'table', 'inet', 'warrenlab'])
        assert.match(stdout, r === 'ra' ? /masquerade\s*$/m : /masquerade fully-random/)
      }
      assert.equal(
        (await lab.exec('a', ['ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout.includes('198.19.1.2/24'),
        true,
      )
    } finally {
      await lab.close()
    }
    const present = listNamespaces()
    for (const ns of names) assert.ok(!present.includes(ns), `${ns} was removed`)
    assert.deepEqual(await rootState(), rootBefore, 'no link or nft table left in the root namespace')
    await lab.close() // idempotent
  })

  it('tears the lab down when its process gets SIGTERM', async () => {
    const { child, namespaces } = await startHolder()
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
    const present = listNamespaces()
    for (const ns of namespaces) assert.ok(!present.includes(ns), `${ns} was removed on SIGTERM`)
  })

  it('cleanupLeftovers removes what a SIGKILLed run left, and nothing of live runs', async () => {
    const own = await createLab()
    try {
      const { child, namespaces } = await startHolder()
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
      // SIGKILL leaves the namespaces behind; another test process's createLab() may run cleanupLeftovers at any time
      // from here on and remove them first, so only the end state is checked, not who removed them.
      assert.ok(namespaces.length > 0, 'the holder made a lab')
      const removed = cleanupLeftovers()
      assert.ok(
        removed.every((ns) => !own.namespaces().includes(ns)),
        'no namespace of a live lab removed',
      )
      const present = listNamespaces()
      for (const ns of namespaces) assert.ok(!present.includes(ns), `leftover ${ns} removed`)
      for (const ns of own.namespaces()) assert.ok(present.includes(ns), `live lab namespace ${ns} kept`)
    } finally {
      await own.close()
    }
  })

  it('rejects malformed or reserved public host names with a clear message', async () => {
    await assert.rejects(createLab({ publicHosts: ['ra'] }), {
      name: 'RangeError',
      message:
        "public host name 'ra' is reserved or malformed: use 1-8 lowercase letters/digits, not sw, ra, rb, a or b",
    })
    await assert.rejects(createLab({ publicHosts: [] }), {
      message: 'a lab needs at least one public host (for the relay/STUN)',
    })
  })
})

describe('NAT behaviour and STUN in the lab', { skip: labSkip }, () => {
  const getLab = useLab('cone', 'symmetric')

  const stunFrom = (host: string, listenMs: number) => {
    const lab = getLab()
    const servers = ['relay', 'relay2'].map((h) => `${lab.address(h)}:${STUN_PORT}`)
    const child = lab.spawnNode(host, tool, ['stun', String(listenMs), ...servers])
    return lineChannel(child.stdout!, child.stdin!, `udp-tool on ${host}`)
  }

  it('cone: one socket keeps one public port (the local port) for two destinations; STUN sees the router', async () => {
    const m = await stunFrom('a', 0).next('mapped', 10_000)
    const mapped = m.mapped as Array<{ host: string; port: number }>
    assert.deepEqual(mapped[0], { host: '198.18.0.2', port: m.local })
    assert.deepEqual(mapped[1], mapped[0])
    // The router's conntrack shows the same mapping, with byte accounting.
    const entries = (await getLab().conntrack('ra')).filter(
      (e) => e.proto === 'udp' && e.original.src === '198.19.1.2' && e.original.sport === m.local,
    )
    assert.deepEqual([...new Set(entries.map((e) => e.original.dst))].sort(), ['198.18.0.1', '198.18.0.4'])
    for (const e of entries) {
      assert.equal(e.reply.dport, mapped[0]!.port)
      assert.ok(e.replied && e.original.bytes > 0 && e.reply.bytes > 0)
    }
  })

  it('symmetric: one socket gets a different public port per destination', async () => {
    const m = await stunFrom('b', 0).next('mapped', 10_000)
    const mapped = m.mapped as Array<{ host: string; port: number }>
    assert.equal(mapped[0]!.host, '198.18.0.3')
    assert.equal(mapped[1]!.host, '198.18.0.3')
    assert.notEqual(mapped[0]!.port, mapped[1]!.port)
  })

  it('netcheck tells the cone host from the symmetric one', async () => {
    const servers = ['relay', 'relay2'].map((h) => `${getLab().address(h)}:${STUN_PORT}`)
    const [a, b] = await Promise.all(
      ['a', 'b'].map(async (host) => {
        const { stdout } = await getLab().exec(host, [pinnedNode(), tool, 'netcheck', ...servers])
        return JSON.parse(stdout).report
      }),
    )
    assert.equal(a.udp, true)
    assert.equal(a.nat, 'easy')
    assert.equal(a.noNat, false)
    assert.equal(a.publicAddresses.length, 1)
    assert.equal(a.publicAddresses[0].host, '198.18.0.2')
    assert.equal(b.nat, 'hard')
    assert.equal(b.mappingVariesByDestination, true)
    assert.equal(b.publicAddresses.length, 2)
  })

  it('drops unsolicited inbound: other sources to a live mapping, and anything to an unmapped port', async () => {
    const chan = stunFrom('a', 1500)
    const m = await chan.next('mapped', 10_000)
    const port = (m.mapped as Array<{ port: number }>)[0]!.port
    const lab = getLab()
    const before = (await lab.counters('ra')).drop_unsolicited!.packets
    // relay2's STUN server port answered, but a new source port on relay2, or another port on the router, is unsolicited.
    await lab.exec('relay2', [pinnedNode(), tool, 'send', '198.18.0.2', String(port), 'from relay2, new port'])
    await lab.exec('relay', [pinnedNode(), tool, 'send', '198.18.0.2', String(port === 40000 ? 40001 : 40000), 'x'])
    await chan.next('end', 10_000)
    assert.deepEqual(
      chan.log.filter((l) => l.type === 'datagram'),
      [],
    )
    const after = (await lab.counters('ra')).drop_unsolicited!.packets
    assert.ok(after - before >= 2, `router counted ${after - before} dropped unsolicited packets`)
  })
})
