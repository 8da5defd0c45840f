/**
 * Transparent mode end to end, in a network namespace: daemon a offers services, daemon b captures the service
 * addresses; unmodified curl (and a plain Node socket client) reach a's services by name through b's DNS server
 * and the system resolver, on default and random ports, IPv4 and IPv6.
 */
import assert from 'node:assert/strict'
import { resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { WarrenClient } from '../../src/client/client.ts'
import { NODE } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'
import { type NsDaemon, NsLab, nsSkip } from './ns-lab.ts'

const CLIENT = resolve('test/transparent/ns-client.ts')
const MiB = 1024 * 1024

interface ClientResult {
  ok: boolean
  code?: string
  remote?: string
  sent?: string
  received?: number
  got?: string
  text?: string
  ms: number
}

describe('transparent mode', { skip: nsSkip }, () => {
  let lab: NsLab
  let a: NsDaemon
  let b: NsDaemon
  /** Waits for a's stream-end line for `service` carrying `port`, the port the application dialled. */
  const hostSawPort = async (service: string, port: number): Promise<void> => {
    await eventually(() => new RegExp(`incoming stream ended: \\S+ → ${service} \\(port ${port}\\), `).test(a.stderr), {
      timeoutMs: 15_000,
      message: `a logged no ${service} stream with destination port ${port}:\n${a.stderr}`,
    })
  }
  const client = async (host: string, port: number, bytes: number, family = 0): Promise<ClientResult> => {
    const r = await lab.exec(NODE, [CLIENT, host, String(port), String(bytes), String(family)], true, {
      timeoutMs: 180_000,
    })
    assert.equal(r.code, 0, r.stderr)
    return JSON.parse(r.stdout) as ClientResult
  }

  before(async () => {
    lab = await NsLab.create()
    const ports = await lab.servers()
    const aHome = await lab.home({
      services: {
        web: { target: `/tcp/${ports.http}`, allow: ['*'] },
        echo: { target: `/tcp/${ports.echo}`, allow: ['*'] },
        hash: { target: `/tcp/${ports.hash}`, allow: ['*'] },
        dead: { target: '/tcp/1', allow: ['*'] }, // nothing listens: the host cannot connect
      },
    })
    a = await lab.daemon(aHome).ready()
    const c = await WarrenClient.connect({ home: a.home })
    const ticket = (await c.id()).ticket
    c.close()
    const bHome = await lab.home({ peers: { a: ticket }, dns: { enabled: true, listen: '127.0.0.1:53' } })
    b = await lab.daemon(bHome, ['--transparent']).ready()
  })
  after(async () => {
    await lab?.close()
  })

  it('curl reaches a web service by name on port 80 and on a random port, IPv4 and IPv6; a sees each port', async () => {
    for (const [flag, url] of [
      ['-4', 'http://web.a.warren/x?y=1'],
      ['-6', 'http://web.a.warren/x?y=1'],
      ['-4', 'http://web.a.warren:31337/p'],
      ['-6', 'http://web.a.warren:8443/q'],
    ] as const) {
      const r = await lab.exec('curl', ['-sS', flag, '--max-time', '20', url])
      assert.equal(r.code, 0, `${flag} ${url}: ${r.stderr}`)
      assert.equal(r.stdout, `hello from a: GET ${new URL(url).pathname}${new URL(url).search}\n`)
      await hostSawPort('web', Number(new URL(url).port || 80))
    }
  })

  it('carries 256 MiB byte-identical both ways with half-close (IPv4)', async () => {
    const r = await client('echo.a.warren', 7, 256 * MiB, 4)
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.match(r.remote!, /^100\./)
    assert.equal(r.received, 256 * MiB)
    assert.equal(r.got, r.sent)
  })

  it('keeps half-close: the service answers after the FIN (IPv6, random port)', async () => {
    const r = await client('hash.a.warren', 40_123, 3 * MiB + 17, 6)
    assert.equal(r.ok, true, JSON.stringify(r))
    assert.match(r.remote!, /^fd77:6172:7265:6e00:/)
    const [n, digest] = r.text!.split(' ')
    assert.equal(Number(n), 3 * MiB + 17)
    assert.equal(digest, r.sent)
    await hostSawPort('hash', 40_123)
  })

  it('resets a connection to a service that cannot be reached, promptly', async () => {
    const r = await lab.exec('curl', ['-sS', '-4', '--max-time', '20', 'http://dead.a.warren/'])
    // a reset: after curl's connect (56, recv failure), or during it (7) when the refusal comes back before curl
    // has checked its connect (the host's connect to port 1 fails at once); 28 would be a timeout
    assert.ok(r.code === 56 || r.code === 7, `curl exit ${r.code}: ${r.stderr}`)
    if (r.code === 56) assert.match(r.stderr, /reset/i)
    // b took the connection and reset it because a could not reach the target, not its refuse rule
    await eventually(() => /transparent: connection to 100\.[\d.]+:80 reset: ERR_TARGET_UNREACHABLE: /.test(b.stderr), {
      timeoutMs: 15_000,
      message: `b logged no reset for dead.a.warren:\n${b.stderr}`,
    })
    const n = await client('nosuch.a.warren', 80, 0) // a name has an address; a has no such service
    assert.equal(n.ok, false)
    assert.equal(n.code, 'ECONNRESET')
  })

  it('resets a connection to an address in the range that names no service', async () => {
    const r = await client('100.64.1.1', 22, 0)
    assert.equal(r.ok, false)
    assert.equal(r.code, 'ECONNRESET')
  })

  it('answers NXDOMAIN for an unknown node', async () => {
    const r = await lab.exec('getent', ['ahosts', 'web.nosuch.warren'])
    assert.equal(r.code, 2, r.stdout) // getent: key not found
    const c = await lab.exec('curl', ['-sS', '--max-time', '20', 'http://web.nosuch.warren/'])
    assert.equal(c.code, 6, c.stderr) // could not resolve host
    const ok = await lab.exec('getent', ['ahostsv4', 'web.a.warren'])
    assert.match(ok.stdout, /^100\.\d+\.\d+\.\d+ +STREAM web\.a\.warren/m)
  })

  it("refuses other local users' connections at once (no proxy.allowOtherUsers)", async () => {
    const r = await lab.exec('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'curl',
      '-sS',
      '-4',
      '--max-time',
      '20',
      'http://web.a.warren/',
    ])
    assert.equal(r.code, 7, r.stderr) // couldn't connect: the SYN got a reset
    assert.match(r.stderr, /Failed to connect to web\.a\.warren port 80 after \d+ ms/)
  })

  it('shows the capture in status --json', async () => {
    const c = await WarrenClient.connect({ home: b.home })
    const status = (await c.status()) as unknown as {
      transparent?: Record<string, unknown> & { connections: Record<string, number> }
    }
    c.close()
    assert.equal(status.transparent?.interface, 'warren0')
    assert.equal(status.transparent?.ipv4Range, '100.64.0.0/10')
    assert.equal(status.transparent?.ipv6Range, 'fd77:6172:7265:6e00::/64')
    assert.ok(status.transparent!.connections.tunneled! >= 6, JSON.stringify(status.transparent))
    assert.ok(status.transparent!.connections.refused! >= 3, JSON.stringify(status.transparent))
    assert.equal((status.transparent!.names as { kind: string }).kind, 'manual') // no systemd-resolved in the namespace
  })

  it('removes everything on stop', async () => {
    assert.notDeepEqual(await lab.leftovers(), [])
    const exit = await b.stop()
    assert.equal(exit.code, 0, b.stderr)
    assert.deepEqual(await lab.leftovers(), [])
  })
})
