/**
 * Listen addresses on real daemons through the real CLI: a bare `--listen <port>` is 127.0.0.1:<port>; a forward on
 * a non-loopback address is refused without `--public` (nothing listens), served with it (and a warning), restored
 * from state.json only when saved with `"public": true`. A stranger's service name with newlines and ANSI escapes
 * reaches the daemon's log escaped, on one line.
 */
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { readFile, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import dnsPacket from 'dns-packet'
import { Uint8ArrayList } from 'uint8arraylist'
import { isWarrenError } from '../../src/errors.ts'
import { decodeResponse, encodeRequest, SERVICE_PROTOCOL, Status, takeFrame } from '../../src/services/header.ts'
import { createTestnet } from '../../src/testing/testnet.ts'
import { runCli } from '../support/cli.ts'
import { TestDaemon } from '../support/daemon.ts'
import { type DaemonPair as Pair, startDaemonPair as startPair } from '../support/daemon-pair.ts'
import { freePort, hashServer, type TestServer } from '../support/servers.ts'
import { ByteSource, MiB, pump } from '../support/transfer.ts'

/** Sends `size` bytes through host:port to the hash server; resolves with its `<bytes> <sha256>` answer. */
function hashThrough(host: string, port: number, size: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', reject)
    s.on('end', () => resolve(Buffer.concat(chunks).toString()))
    s.on('connect', () => pump(new ByteSource(size, 7), s).catch(reject))
  })
}

/** Whether anything accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

describe('listen addresses on real daemons', () => {
  let pair: Pair
  let hash: TestServer
  const b = (args: string[]) => runCli(args, { home: pair.bHome.dir })
  const size = 4 * MiB
  const expected = `${size} ${ByteSource.digest(size, 7)}`

  before(async () => {
    hash = await hashServer()
    pair = await startPair({ hash: `/tcp/${hash.port}` })
  })

  after(async () => {
    await pair?.close()
    await hash?.close()
  })

  it('--listen <port> is 127.0.0.1:<port>, and carries every byte', async () => {
    const port = await freePort()
    const fwd = await b(['forward', 'a/hash', '--listen', String(port)])
    assert.equal(fwd.code, 0, fwd.stderr)
    assert.equal(fwd.stdout, `127.0.0.1:${port}\n`)
    assert.equal(await hashThrough('127.0.0.1', port, size), expected)
    assert.equal((await b(['forward', '--remove', String(port)])).stdout, `removed the forward on 127.0.0.1:${port}\n`)
  })

  it('a malformed --listen is ERR_BAD_ADDRESS (exit 2) with the reason', async () => {
    const r = await b(['forward', 'a/hash', '--listen', '::1:5432'])
    assert.equal(r.code, 2)
    assert.equal(
      r.stderr,
      'warren: "::1:5432" is not a listen address: an IPv6 address needs brackets, e.g. [::1]:5432\n' +
        'hint: Write it as host:port, e.g. 127.0.0.1:5432 or [::1]:5432, or a bare port such as 5432 for 127.0.0.1 (port 0 picks a free port).\n',
    )
  })

  it('refuses a forward on 0.0.0.0 without --public: exit 2, nothing listens, nothing saved', async () => {
    const port = await freePort()
    const r = await b(['forward', 'a/hash', '--listen', `0.0.0.0:${port}`])
    assert.equal(r.code, 2)
    assert.equal(
      r.stderr,
      `warren: the forward to a/hash would listen on 0.0.0.0:${port}, which is not a loopback address: other machines could use it\n` +
        'hint: Add --public to let other machines use it (for a forward in state.json: "public": true), or listen on 127.0.0.1.\n',
    )
    assert.equal(await listening(port), false, 'a refused forward must not listen')
    const state = JSON.parse(await readFile(pair.bHome.state, 'utf8').catch(() => '{"forwards":[]}'))
    assert.deepEqual(state.forwards, [])
  })

  it('serves it with --public and a warning; restores it only when state.json says "public": true', async () => {
    const port = await freePort()
    const fwd = await b(['forward', 'a/hash', '--listen', `0.0.0.0:${port}`, '--public'])
    assert.equal(fwd.code, 0, fwd.stderr)
    assert.equal(fwd.stdout, `0.0.0.0:${port}\n`)
    assert.ok(
      fwd.stderr.startsWith(
        `warren: warning: 0.0.0.0:${port} is not a loopback address: anyone who can reach it uses a/hash as this node\n`,
      ),
      fwd.stderr,
    )
    await pair.b.waitForLog(
      new RegExp(`warn {2}the forward to a/hash listens on 0\\.0\\.0\\.0:${port}, a non-loopback address: anyone`),
    )
    assert.equal(await hashThrough('127.0.0.1', port, size), expected)
    const saved = JSON.parse(await readFile(pair.bHome.state, 'utf8'))
    assert.deepEqual(saved.forwards, [{ node: 'a', service: 'hash', listen: `0.0.0.0:${port}`, public: true }])

    // restored with "public": true
    await pair.restartB()
    await pair.b.waitForLog(new RegExp(`forward 0\\.0\\.0\\.0:${port} → a/hash`))
    assert.equal(await hashThrough('127.0.0.1', port, size), expected)

    // a state.json edited to drop "public" does not open it again
    await pair.b.stop('SIGTERM')
    await writeFile(
      pair.bHome.state,
      JSON.stringify({ ...saved, forwards: [{ node: 'a', service: 'hash', listen: `0.0.0.0:${port}` }] }),
      { mode: 0o600 },
    )
    pair.b = await TestDaemon.start(pair.bHome)
    await pair.b.waitForLog(
      new RegExp(
        `warn {2}could not restore forward 0\\.0\\.0\\.0:${port} → a/hash: the forward to a/hash would listen on 0\\.0\\.0\\.0:${port}, which is not a loopback address`,
      ),
    )
    assert.equal(await listening(port), false, 'a forward saved without "public" must not listen')
  })

  it('serves DNS on 0.0.0.0 only with "public": true, and warns', async () => {
    await assert.rejects(
      createTestnet(1, { config: { 0: { dns: { enabled: true, listen: '0.0.0.0:0' } } } }),
      (err: Error) =>
        isWarrenError(err, 'ERR_CONFIG_INVALID') &&
        err.message.includes(
          'dns.public: must be true because listen "0.0.0.0:0" is not a loopback address and other machines could query it',
        ),
    )
    const logs: string[] = []
    const net = await createTestnet(1, {
      config: { 0: { dns: { enabled: true, listen: '0.0.0.0:0', public: true } } },
      log: (level, message) => logs.push(`${level} ${message}`),
    })
    try {
      assert.ok(
        logs.includes(
          'warn the DNS server listens on 0.0.0.0:0, a non-loopback address: anyone who can reach it can look up the names and service addresses this node knows',
        ),
        logs.join('\n'),
      )
      const listen = net.nodes[0]!.status().dns!.listen
      assert.match(listen, /^0\.0\.0\.0:\d+$/)
      const port = Number(listen.split(':')[1])
      const udp = createSocket('udp4')
      const answer = await new Promise<Buffer>((resolve) => {
        udp.on('message', (m) => resolve(m))
        udp.send(
          dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'example.com' }] }),
          port,
          '127.0.0.1',
        )
      })
      udp.close()
      assert.equal((dnsPacket.decode(answer) as unknown as { rcode: string }).rcode, 'REFUSED')
    } finally {
      await net.stop()
    }
  })

  it("logs a stranger's service name with newlines and escapes on one line", async () => {
    const net = await createTestnet(1)
    try {
      const ident = await pair.a.identity()
      const addr = multiaddr(ident.addrs.find((x) => x.startsWith('/ip4/127.0.0.1/tcp/'))!).encapsulate(
        `/p2p/${ident.id}`,
      )
      const name = 'x\n2026-01-01T00:00:00.000Z info  forged\r\x1b[31mred\u2028z'
      const stream = await net.nodes[0]!.libp2p.dialProtocol(addr, SERVICE_PROTOCOL)
      stream.send(encodeRequest({ service: name }))
      const chunks = new Uint8ArrayList()
      for await (const c of stream) chunks.append(c)
      const escaped = 'x\\n2026-01-01T00:00:00.000Z info  forged\\r\\x1b[31mred\\u2028z'
      // the reason quotes the name; the asking side takes it as one line, its control characters escaped
      assert.deepEqual(decodeResponse(takeFrame(chunks)!), {
        status: Status.UNKNOWN_SERVICE,
        reason: `this node has no service "${escaped}"`,
      })
      await pair.a.waitForLog(
        new RegExp(`refused: \\S+ → ${escaped.replaceAll('\\', '\\\\').replaceAll('[', '\\[')}: `),
      )
      const lines = pair.a.stderr.split('\n')
      assert.ok(!lines.some((l) => l.startsWith('2026-01-01T00:00:00.000Z')), 'no forged line')
      assert.ok(!pair.a.stderr.includes('\x1b') && !pair.a.stderr.includes('\r') && !pair.a.stderr.includes('\u2028'))
    } finally {
      await net.stop()
    }
  })
})
