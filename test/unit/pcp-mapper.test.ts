/**
 * The {@link PortMapper} with its PCP client against a PCP server on a real loopback UDP socket: the probe, the
 * mappings and their `change` events, renewal at half the lifetime, a server restart noticed by its epoch and mapped
 * again, a refusal and a silent gateway reported with their reasons (the silent one within the probe bound), and the
 * mappings deleted on stop.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { parseRoutes } from '../../src/traversal/portmap/gateway.ts'
import { PcpClient } from '../../src/traversal/portmap/pcp.ts'
import { PortMapper } from '../../src/traversal/portmap/port-mapper.ts'
import { eventually } from '../support/eventually.ts'
import { TestPcpServer } from './pcp-test-server.ts'

const servers: TestPcpServer[] = []
after(() => {
  for (const s of servers) s.socket.close()
})

async function setup(opts: { lifetimeS?: number; probeTimeoutMs?: number; retryFirstMs?: number } = {}) {
  const server = new TestPcpServer()
  servers.push(server)
  const port = await server.listen()
  const mapper = new PortMapper({
    ports: () => ({ tcp: 4781, udp: 5000 }),
    protocols: { pcp: true, natPmp: false, upnp: false },
    lifetimeS: opts.lifetimeS ?? 7200,
    probeTimeoutMs: opts.probeTimeoutMs ?? 1500,
    requestTimeoutMs: 500,
    ...(opts.retryFirstMs === undefined ? {} : { retryFirstMs: opts.retryFirstMs, networkCheckMs: 100 }),
    findGateway: async () => ({ gateway: '127.0.0.1', iface: 'lo', local: '127.0.0.1' }),
    clients: () => [new PcpClient('127.0.0.1', '127.0.0.1', port)],
  })
  let changes = 0
  mapper.addEventListener('change', () => changes++)
  return { server, mapper, changes: () => changes }
}

describe('PortMapper with PCP', () => {
  it('maps the TCP and UDP ports, reports them, and deletes them on stop', async () => {
    const { server, mapper, changes } = await setup()
    mapper.start()
    await eventually('mapped', () => mapper.status().state === 'mapped')
    const st = mapper.status()
    assert.equal(st.protocol, 'pcp')
    assert.equal(st.gateway, '127.0.0.1')
    assert.deepEqual(st.probes, { pcp: 'ok', 'nat-pmp': 'off', upnp: 'off' })
    assert.deepEqual(
      st.mappings.map((m) => `${m.protocol} ${m.transport} ${m.internal} ${m.external}`),
      ['pcp tcp 127.0.0.1:4781 203.0.113.7:14781', 'pcp udp 127.0.0.1:5000 203.0.113.7:15000'],
    )
    const left = st.mappings[0]!.expiresAt - Date.now()
    assert.ok(left > 3590_000 && left <= 3600_000, `the server's lifetime (3600 s) is kept: ${left} ms`)
    assert.equal(server.mappings.size, 2)
    assert.ok(changes() >= 1)
    await mapper.stop()
    assert.deepEqual(mapper.mappings(), [])
    assert.equal(server.mappings.size, 0, 'both mappings deleted at the gateway')
  })

  it('renews at half the lifetime although the checks between renewals find nothing lost', async () => {
    // lifetime 8 s: a check every 2 s (the server's epoch runs on), a renewal every 4 s
    const { server, mapper } = await setup({ lifetimeS: 8 })
    mapper.start()
    await eventually('mapped', () => mapper.status().state === 'mapped')
    const first = server.maps
    const expires = mapper.status().mappings[0]!.expiresAt
    await eventually('renewed', () => server.maps >= first + 2, 7000)
    assert.ok(mapper.status().mappings[0]!.expiresAt > expires, 'the renewal moved the expiry')
    await mapper.stop()
  })

  it('renews at half the lifetime and maps again after a server restart', async () => {
    const { server, mapper } = await setup({ lifetimeS: 10 })
    server.maxLifetimeS = 2
    mapper.start()
    await eventually('mapped', () => mapper.status().state === 'mapped')
    const first = server.maps
    await eventually('renewed', () => server.maps >= first + 2, 3000)
    server.restart()
    assert.equal(server.mappings.size, 0)
    await eventually('mapped again', () => server.mappings.size === 2, 5000)
    assert.equal(mapper.mappings().length, 2)
    await mapper.stop()
    assert.equal(server.mappings.size, 0)
  })

  it('reports a refusal with its result code, and holds nothing', async () => {
    const { server, mapper } = await setup()
    server.refuse = true
    mapper.start()
    await eventually('none', () => mapper.status().state === 'none')
    const st = mapper.status()
    assert.equal(
      st.reason,
      'pcp: refused: the gateway refused the PCP mapping: NOT_AUTHORIZED; nat-pmp: off; upnp: off',
    )
    assert.deepEqual(st.mappings, [])
    await mapper.stop()
  })

  it('gives up on a silent gateway within the probe bound, without blocking start', async () => {
    const { server, mapper } = await setup({ probeTimeoutMs: 300 })
    server.silent = true
    const t0 = performance.now()
    mapper.start()
    assert.ok(performance.now() - t0 < 50, 'start returns at once')
    await eventually('none', () => mapper.status().state === 'none', 2000)
    assert.equal(mapper.status().reason, 'pcp: no answer; nat-pmp: off; upnp: off')
    await mapper.stop()
  })

  it('asks a gateway that did not answer again later, and maps once it answers', async () => {
    const { server, mapper } = await setup({ probeTimeoutMs: 300, retryFirstMs: 400 })
    server.silent = true
    mapper.start()
    await eventually('none', () => mapper.status().state === 'none', 2000)
    const firstProbe = mapper.status().probedAt
    server.silent = false
    await eventually('mapped on a retry', () => mapper.status().state === 'mapped', 5000)
    assert.ok(mapper.status().probedAt! >= firstProbe! + 400, 'not before the retry time')
    assert.deepEqual(
      mapper
        .mappings()
        .map((m) => m.transport)
        .sort(),
      ['tcp', 'udp'],
    )
    await mapper.stop()
  })

  it('is off when every protocol is off', async () => {
    const mapper = new PortMapper({ ports: () => ({ tcp: 1 }), protocols: { pcp: false, natPmp: false, upnp: false } })
    mapper.start()
    assert.deepEqual(mapper.status(), { state: 'off', mappings: [], probes: {}, reason: 'every protocol is off' })
    await mapper.stop()
  })
})

describe('the default gateway from /proc/net/route', () => {
  const HEAD = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT'
  it('takes the default route with the lowest metric', () => {
    const text = [
      HEAD,
      'eth1\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
      'eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0',
      'eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
    ].join('\n')
    assert.deepEqual(parseRoutes(text), { gateway: '192.168.1.1', iface: 'eth0' })
  })

  it('finds none without a default route that is up and via a gateway', () => {
    assert.equal(parseRoutes(HEAD), undefined)
    assert.equal(parseRoutes(`${HEAD}\neth0\t00000000\t0101A8C0\t0001\t0\t0\t0\t00000000\t0\t0\t0`), undefined)
    assert.equal(parseRoutes(''), undefined)
  })
})
