/**
 * Discovery with real daemons (`warren up` processes) that share only a relay: `warren ping <id>` and curl through
 * SOCKS5 to `web.<base36 id>.warren` work with nothing but the id; `warren lookup` shows each address with its source
 * and age, `warren status` the DHT's health, `warren id` the short ticket.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { LookupResult } from '../../src/discovery/resolver.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { decodeTicket } from '../../src/identity/ticket.ts'
import type { NodeIdentity, NodeStatus } from '../../src/node/types.ts'
import { validateRelayConfig } from '../../src/relay/server/config.ts'
import { type Relay, startRelay } from '../../src/relay/server/relay-node.ts'
import { curl } from '../support/access-clients.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'
import { startWebApp } from '../support/web-app.ts'

describe('discovery from the command line (two daemons sharing a relay)', () => {
  let relay: Relay
  let web: Awaited<ReturnType<typeof startWebApp>>
  let a: TestDaemon
  let b: TestDaemon
  let aId: NodeIdentity
  const homes: Awaited<ReturnType<typeof makeHome>>[] = []
  const b$ = (args: string[]) => runCli(args, { home: b.home.dir })

  before(async () => {
    web = await startWebApp()
    relay = await startRelay({
      privateKey: await generateNodeKey(),
      config: validateRelayConfig({
        listen: ['/ip4/127.0.0.1/tcp/0'],
        stun: false,
        discovery: { privateAddresses: true },
      }),
    })
    const shared = {
      relays: [relay.addrs[0]!],
      discovery: { privateAddresses: true, lookupTimeoutMs: 3_000 },
    }
    // `a` lets everyone use web; neither node names the other anywhere
    const aHome = await makeHome(
      testConfig({ ...shared, services: { web: { target: `/tcp/${web.port}`, allow: ['*'] } } }),
    )
    const bHome = await makeHome(testConfig(shared))
    homes.push(aHome, bHome)
    ;[a, b] = await Promise.all([TestDaemon.start(aHome), TestDaemon.start(bHome)])
    aId = await a.identity()
    // both records are out before the nodes look each other up
    for (const d of [a, b]) {
      await eventually(
        async () => {
          const st = JSON.parse((await runCli(['status', '--json'], { home: d.home.dir })).stdout) as NodeStatus
          const dht = st.discovery?.dht
          assert.ok(dht?.enabled && dht.publish.lastSuccessAt !== undefined, `no DHT publish: ${JSON.stringify(dht)}`)
          return true
        },
        { timeoutMs: 15_000, intervalMs: 200, message: 'a DHT publish' },
      )
    }
  })
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await relay?.stop()
    await web?.close()
    await Promise.all(homes.map((h) => removeHome(h)))
  })

  it('warren lookup <id> shows each address with its source and age, then warren ping <id> works', async () => {
    const text = await b$(['lookup', aId.id])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, new RegExp(`^${aId.id}: 2 address\\(es\\) in \\d+ ms$`, 'm'))
    assert.match(text.stdout, /^ {2}\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+\/p2p-circuit +dht +\d+s old$/m)
    assert.match(
      text.stdout,
      /^sources\n {2}cache +nothing cached\n {2}config +no address in peers, tickets or --addr\n {2}dht +2 address\(es\)$/m,
    )

    const ping = await b$(['ping', aId.id, '--json'])
    assert.equal(ping.code, 0, ping.stderr)
    assert.equal((JSON.parse(ping.stdout) as { id: string }).id, aId.id)

    const json = JSON.parse((await b$(['lookup', aId.idBase36, '--json'])).stdout) as LookupResult
    assert.equal(json.id, aId.id)
    assert.deepEqual(
      json.tried.map((t) => [t.source, t.found]),
      [
        ['cache', true],
        ['config', false],
        ['dht', true],
      ],
    )
    assert.ok(json.addrs.some((x) => x.source === 'cache' && x.origin === 'dht'))
  })

  it('curl through SOCKS5 reaches web.<base36 id>.warren with nothing but the id', async () => {
    const st = JSON.parse((await b$(['status', '--json'])).stdout) as NodeStatus
    const r = await curl(['--socks5-hostname', st.access!.listen, `http://web.${aId.idBase36}.warren/info`])
    assert.equal(r.code, 0, r.stderr)
    assert.equal((JSON.parse(r.stdout) as { url: string }).url, '/info')
  })

  it('an unknown id: exit 4 and ERR_LOOKUP_FAILED naming every source', async () => {
    const unknown = peerIdFromPrivateKey(await generateNodeKey()).toString()
    const r = await b$(['lookup', unknown])
    assert.equal(r.code, 4)
    assert.equal(
      r.stderr,
      `warren: no address found for node ${unknown} (cache: nothing cached; config: no address in peers, tickets or --addr; dht: no record on the 1 DHT server(s) asked)\n` +
        'hint: Check that the node runs and shares a relay or LAN with this one (`warren status` on it shows its last DHT publish), or use its ticket (`warren id` there) or --addr. The lookup waits 3000 ms (discovery.lookupTimeoutMs).\n',
    )
    const json = await b$(['ping', unknown, '--json'])
    assert.equal(json.code, 4)
    assert.equal((JSON.parse(json.stderr) as { error: { code: string } }).error.code, 'ERR_LOOKUP_FAILED')
  })

  it('warren lookup refuses what is not a node: exact message, hint and exit status', async () => {
    const cases: Array<[string, number, string]> = [
      [
        '12D3KooWnope',
        2,
        'warren: "12D3KooWnope" is not a valid node id: it has 12 characters, a base58 node id has 52\n' +
          'hint: It looks truncated; copy it again from `warren id` on that node.\n',
      ],
      [
        'laptop',
        4,
        'warren: "laptop" is not a node id, a ticket, or an alias in peers\n' +
          "hint: Use the node's id or ticket from `warren id` on that node, or add an alias under peers in config.json.\n",
      ],
    ]
    for (const [arg, code, stderr] of cases) {
      const r = await b$(['lookup', arg])
      assert.equal(r.stderr, stderr, arg)
      assert.equal(r.code, code, arg)
      assert.equal(r.stdout, '')
    }
    const usage = await b$(['lookup'])
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /^warren: missing required argument 'node'\nhint: See `warren lookup --help`\.\n$/)
  })

  it('warren status shows DHT health; warren id the short ticket', async () => {
    const st = await b$(['status'])
    assert.equal(st.code, 0, st.stderr)
    assert.match(
      st.stdout,
      /^discovery\n {2}dht {4}client mode, 1 server\(s\) in the routing table, last publish \d+s ago on 1 server\(s\), 2 address\(es\)\n {2}mdns {3}off\n {2}cache {2}\d+ node\(s\), TTL 5m 0s$/m,
    )
    const id = await runCli(['id'], { home: a.home.dir })
    const short = /^short ticket +(warren[a-z2-7]+) {2}\(id and home relay; discovery finds the rest\)$/m.exec(
      id.stdout,
    )
    assert.ok(short, id.stdout)
    const t = decodeTicket(short[1]!)
    assert.equal(t.id.toString(), aId.id)
    assert.deepEqual(t.addrs.map(String), [`${relay.addrs[0]}/p2p-circuit`])
  })
})
