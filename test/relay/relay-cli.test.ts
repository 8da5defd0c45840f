/**
 * `warren relay` as real processes: bad flags, `warren relay status`, graceful shutdown, and failover of a node from
 * a killed relay process to a second one (measured).
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { lineChannel } from '../../src/testing/natlab/lines.ts'
import { runCli, spawnCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'
import { startNode } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

interface RelayProcess {
  home: string
  child: ChildProcess
  id: string
  addr: string
  stderr: string[]
  exited: Promise<number | null>
}

async function relayHome(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'warren-relay-'))
  await writeFile(join(home, 'relay.json'), JSON.stringify({ stun: { host: '127.0.0.1', port: 0 } }))
  return home
}

/** Starts `warren relay --json` on 127.0.0.1 and waits for its ready line. */
async function spawnRelay(extra: string[] = []): Promise<RelayProcess> {
  const home = await relayHome()
  const child = spawnCli(['--home', home, 'relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0', ...extra])
  const stderr: string[] = []
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const ready = await lineChannel(child.stdout!, child.stdin!, 'warren relay')
    .next('text', 45_000)
    .catch((err: Error) => {
      throw new Error(`${err.message}\n${stderr.join('')}`)
    })
  const info = JSON.parse(String(ready.text)) as { id: string; addrs: string[] }
  return { home, child, id: info.id, addr: info.addrs[0]!, stderr, exited }
}

/** `warren status --json` once the daemon has a home relay. */
function eventuallyHome(home: string): Promise<{ relay: { home: string }; addrs: string[] }> {
  return eventually(
    async () => {
      const r = await runCli(['--home', home, 'status', '--json'])
      const st = JSON.parse(r.stdout) as { relay?: { home: string | null }; addrs: string[] }
      assert.ok(st.relay?.home != null, r.stdout)
      return st as { relay: { home: string }; addrs: string[] }
    },
    { timeoutMs: 15_000, intervalMs: 200, message: 'a home relay' },
  )
}

async function stopRelay(r: RelayProcess | undefined): Promise<void> {
  if (r === undefined) return
  if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL')
  await r.exited
  await rm(r.home, { recursive: true, force: true })
}

describe('warren relay: bad input', () => {
  let home: string
  before(async () => {
    home = await relayHome()
  })
  after(async () => {
    await rm(home, { recursive: true, force: true })
  })

  it('refuses --cert without --ws, a bad port, --behind-proxy without --ws and a bad --allow, each with the fix', async () => {
    const cert = await runCli(['--home', home, 'relay', '--cert', 'c.pem', '--key', 'k.pem'])
    assert.equal(cert.code, 2)
    assert.equal(
      cert.stderr,
      'warren: --cert and --key need --ws <port>: they make the WebSocket listener WSS\n' +
        'hint: For example: warren relay --ws 443 --cert fullchain.pem --key privkey.pem\n',
    )
    const port = await runCli(['--home', home, 'relay', '--ws', '70000'])
    assert.equal(port.code, 2)
    assert.match(port.stderr, /^warren: --ws "70000" is not a whole number from 0 to 65535\n/)
    const proxy = await runCli(['--home', home, 'relay', '--behind-proxy', 'relay.example.net'])
    assert.equal(proxy.code, 3)
    assert.match(
      proxy.stderr,
      /behindProxy: needs a WebSocket port for the proxy to forward to \(set "ws": \{ "port": 4002 \} or pass --ws 4002\)/,
    )
    const allow = await runCli(['--home', home, 'relay', '--allow', 'laptop'])
    assert.equal(allow.code, 3)
    assert.match(
      allow.stderr,
      /allow\[0\]: "laptop" is not a node id: it does not start with 12D3KooW \(base58\) or k51qzi5uqu5 \(base36\)/,
    )
    assert.match(allow.stderr, /hint: Fix the fields named above in relay.json or the matching flags; docs\/relay.md/)
  })

  it('a TCP or STUN port in use stops the relay with ERR_LISTEN_FAILED and the flag to change', async () => {
    const { createServer } = await import('node:net')
    const { createSocket } = await import('node:dgram')
    const tcp = createServer()
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r))
    const tcpPort = (tcp.address() as { port: number }).port
    const udp = createSocket('udp4')
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r))
    try {
      const taken = await runCli(['--home', home, 'relay', '--listen', `/ip4/127.0.0.1/tcp/${tcpPort}`])
      assert.equal(taken.code, 6)
      assert.match(
        taken.stderr,
        new RegExp(
          `warren: the relay cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${tcpPort}: address in use\n` +
            'hint: Another process \\(perhaps another relay\\) uses that port; pass other --listen/--ws ports or change relay\\.json\\.\n$',
        ),
      )
      const stunPort = udp.address().port
      await writeFile(join(home, 'relay.json'), JSON.stringify({ stun: { host: '127.0.0.1', port: stunPort } }))
      const stun = await runCli(['--home', home, 'relay', '--listen', '/ip4/127.0.0.1/tcp/0'])
      assert.equal(stun.code, 6)
      assert.match(
        stun.stderr,
        new RegExp(
          `warren: the relay STUN responder could not bind UDP 127\\.0\\.0\\.1:${stunPort}: bind EADDRINUSE 127\\.0\\.0\\.1:${stunPort}\n` +
            'hint: Pass another UDP port with --stun <port> \\(or --no-stun\\), or stop the process that holds it\\.\n$',
        ),
      )
    } finally {
      await writeFile(join(home, 'relay.json'), JSON.stringify({ stun: { host: '127.0.0.1', port: 0 } }))
      tcp.close()
      udp.close()
    }
  })

  it('`warren relay status` without a running relay says so and how to start one', async () => {
    const r = await runCli(['--home', home, 'relay', 'status'])
    assert.equal(r.code, 7)
    assert.equal(
      r.stderr,
      `warren: no Warren relay is running for ${home}\n` +
        'hint: Start one with `warren relay` (use --home or WARREN_RELAY_HOME for another relay home).\n',
    )
  })
})

describe('warren relay processes: failover, status, shutdown', () => {
  let hash: TestServer
  const relays: RelayProcess[] = []
  before(async () => {
    hash = await hashServer()
    relays.push(...(await Promise.all([spawnRelay(), spawnRelay()])))
  })
  after(async () => {
    await Promise.all(relays.map(stopRelay))
    await hash.close()
  })

  it('a node whose home relay process is killed is reachable through the second relay within 10 s', async (t) => {
    const b = await startNode({
      config: { relays: relays.map((r) => r.addr), services: { hash: { target: `/tcp/${hash.port}`, allow: ['*'] } } },
    })
    const a = await startNode()
    try {
      const ticket = b.identity().ticket // carries both relays' circuit addresses, from before the failure
      const first = await transfer(await a.openService(ticket, 'hash'), 256 * 1024)
      assert.equal(first.answer, `${first.sent} ${first.sha256}`)
      const homeId = b.homeRelay!.status().home
      const home = relays.find((r) => r.id === homeId)!
      const other = relays.find((r) => r !== home)!
      assert.ok(home !== undefined, `home ${homeId} is one of the relays`)

      home.child.kill('SIGKILL')
      const killedAt = performance.now()
      let attempts = 0
      const reachedMs = await eventually(
        async () => {
          attempts++
          const r = await transfer(
            await a.openService(ticket, 'hash', { signal: AbortSignal.timeout(2_000) }),
            64 * 1024,
          )
          assert.equal(r.answer, `${r.sent} ${r.sha256}`)
          return performance.now() - killedAt
        },
        { timeoutMs: 10_000, intervalMs: 100, message: 'b reachable through the second relay' },
      )
      t.diagnostic(
        `failover: reachable through the second relay ${reachedMs.toFixed(0)} ms after the kill (${attempts} attempts)`,
      )
      // a can reach b through the second relay a moment before b's relay client reports that relay as its home
      await eventually(() => b.homeRelay!.status().home === other.id || undefined, {
        timeoutMs: 10_000,
        message: "b's home relay moves to the second relay",
      })
      const path = a.peers().find((p) => p.id === b.peerId.toString())?.path
      assert.deepEqual({ kind: path?.kind, relay: path?.relay }, { kind: 'relay', relay: other.id })

      // `warren relay status` of the surviving relay: the reservation, the open circuit, the bytes
      const st = await runCli(['--home', other.home, 'relay', 'status', '--json'])
      assert.equal(st.code, 0, st.stderr)
      const status = JSON.parse(st.stdout) as import('../../src/relay/server/relay-node.ts').RelayStatus
      assert.deepEqual(
        status.reservations.map((r) => r.node),
        [b.peerId.toString()],
      )
      assert.ok(status.circuits.some((c) => c.dst === b.peerId.toString() && c.src === a.peerId.toString()))
      assert.ok(status.totals.bytesRelayed >= 64 * 1024, `bytes relayed ${status.totals.bytesRelayed}`)
      const human = await runCli(['--home', other.home, 'relay', 'status'])
      assert.equal(human.code, 0)
      assert.match(human.stdout, new RegExp(`^relay id +${other.id}$`, 'm'))
      assert.match(human.stdout, new RegExp(`^reservations \\(1\\)\\n  ${b.peerId} +bounded {2}expires in `, 'm'))
      assert.match(human.stdout, /^circuits \(\d+\)$/m)
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('a daemon with relays shows its home relay in `warren status` and in its ticket', async () => {
    const relayAddrs = relays
      .filter((r) => r.child.exitCode === null && r.child.signalCode === null)
      .map((r) => `${r.addr}`)
    const home = await makeHome(testConfig({ relays: relayAddrs }))
    const d = await TestDaemon.start(home)
    try {
      const st = await eventuallyHome(home.dir)
      assert.ok(
        relays.some((r) => r.id === st.relay.home),
        `home relay ${st.relay.home} is one of ours`,
      )
      assert.ok(
        st.addrs.some((a) => a.includes(`/p2p/${st.relay.home}/p2p-circuit`)) ||
          (await runCli(['--home', home.dir, 'id', '--json'])).stdout.includes(`/p2p/${st.relay.home}/p2p-circuit`),
        'the ticket carries the relay address',
      )
      const human = await runCli(['--home', home.dir, 'status'])
      assert.equal(human.code, 0, human.stderr)
      assert.match(human.stdout, new RegExp(`relays \\(${relayAddrs.length}\\), home: ${st.relay.home}`))
    } finally {
      await d.stop()
      await removeHome(home)
    }
  })

  it('`warren netcheck` reports UDP, the address each relay STUN sees, no NAT on loopback, and the relays', async () => {
    const relayAddrs = relays.filter((r) => r.child.exitCode === null && r.child.signalCode === null).map((r) => r.addr)
    const home = await makeHome(testConfig({ relays: relayAddrs }))
    const off = await makeHome(testConfig({ relays: relayAddrs, traversal: { enabled: false } }))
    const d = await TestDaemon.start(home)
    const dOff = await TestDaemon.start(off)
    try {
      await eventuallyHome(home.dir)
      const r = await runCli(['--home', home.dir, 'netcheck', '--json'])
      assert.equal(r.code, 0, r.stderr)
      const report = JSON.parse(r.stdout) as {
        udp: boolean
        servers: { mapped?: { host: string; port: number } }[]
        publicAddresses: { host: string }[]
        mappingVariesByDestination?: boolean
        noNat?: boolean
        tcp?: { mapped?: { host: string; port: number }; nat?: string; error?: string }
        home: string
        relays: { state: string; rttMs?: number }[]
      }
      assert.equal(report.udp, true)
      assert.equal(report.servers.length, relayAddrs.length)
      assert.ok(report.servers.every((s) => s.mapped?.host === '127.0.0.1'))
      assert.deepEqual(
        report.publicAddresses.map((a) => a.host),
        ['127.0.0.1'],
      )
      assert.equal(report.noNat, true)
      if (relayAddrs.length >= 2) assert.equal(report.mappingVariesByDestination, false)
      // the relays answer STUN over TCP on the same port: the TCP mapping of one local port, the same from each
      const relaysNow = relays.map((x) => ({
        addr: x.addr,
        exit: x.child.exitCode ?? x.child.signalCode,
        log: x.stderr.join('').slice(-2_000),
      }))
      assert.equal(report.tcp?.mapped?.host, '127.0.0.1', JSON.stringify({ tcp: report.tcp, relays: relaysNow }))
      if (relayAddrs.length >= 2) assert.equal(report.tcp?.nat, 'easy')
      assert.ok(relays.some((x) => x.id === report.home))
      assert.ok(report.relays.some((e) => e.state === 'home' && typeof e.rttMs === 'number'))
      const human = await runCli(['--home', home.dir, 'netcheck'])
      assert.match(human.stdout, /^udp\s+yes$/m)
      assert.match(human.stdout, /^nat\s+none/m)
      assert.match(human.stdout, /^tcp\s+127\.0\.0\.1:\d+/m)
      const refused = await runCli(['--home', off.dir, 'netcheck'])
      assert.equal(refused.code, 5)
      assert.equal(
        refused.stderr,
        'warren: direct paths are off (traversal.enabled is false)\nhint: Set "traversal": { "enabled": true } in config.json.\n',
      )
    } finally {
      await Promise.all([d.stop(), dOff.stop()])
      await Promise.all([removeHome(home), removeHome(off)])
    }
  })

  it('stops cleanly on SIGTERM: exit status 0, API socket and pid file removed', async () => {
    const r = relays.find((x) => x.child.exitCode === null && x.child.signalCode === null)!
    assert.ok(existsSync(join(r.home, 'relay.sock')) && existsSync(join(r.home, 'relay.pid')))
    r.child.kill('SIGTERM')
    const code = await Promise.race([r.exited, new Promise((res) => setTimeout(() => res('timeout'), 5_000))])
    assert.equal(code, 0, r.stderr.join(''))
    assert.equal(existsSync(join(r.home, 'relay.sock')), false)
    assert.equal(existsSync(join(r.home, 'relay.pid')), false)
    assert.match(r.stderr.join(''), /stopping the relay \(SIGTERM\)[\s\S]*relay stopped/)
  })
})
