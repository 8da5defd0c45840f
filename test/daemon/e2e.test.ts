/**
 * End to end through the CLI with two daemons on loopback: an HTTP service fetched through `warren forward` and
 * `warren connect`, half-close, 200 concurrent connections, every failure's exact message, and a restart that
 * brings the forwards back.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { access } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { connect as tcpConnect } from 'node:net'
import { after, before, test } from 'node:test'
import { WarrenClient } from '../../src/client/client.ts'
import { isWarrenError } from '../../src/errors.ts'
import { runCli } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { echoServer, freePort, hashServer, type TestServer } from '../support/servers.ts'

let pair: DaemonPair
let web: Server
let webPort: number
let echo: TestServer
let hash: TestServer
const OTHER_ID = '12D3KooWFhA6TC6wNfyaBVo4W9QLBwX77k7Jkuwokh3LiMBUqnRz' // a valid id nobody here has
let deadPort: number

before(async () => {
  web = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain')
    res.end(`hello from web: ${req.method} ${req.url}\n`)
  })
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r))
  webPort = (web.address() as { port: number }).port
  echo = await echoServer()
  hash = await hashServer()
  deadPort = await freePort()
  pair = await startDaemonPair({
    web: `/tcp/${webPort}`,
    echo: `/tcp/${echo.port}`,
    hash: `/tcp/${hash.port}`,
    priv: { target: `/tcp/${webPort}`, allow: [OTHER_ID] },
    dead: { target: `/tcp/${deadPort}`, allow: ['*'] },
  })
})

after(async () => {
  await pair?.close()
  web?.closeAllConnections()
  await new Promise((r) => web?.close(r))
  await echo?.close()
  await hash?.close()
})

const b = (args: string[], input?: string | Buffer) =>
  runCli(args, { home: pair.bHome.dir, ...(input === undefined ? {} : { input }) })

/** Connects to a local port, sends `data`, half-closes, and collects everything until the other side closes. */
function exchange(port: number, data: string | Buffer, timeoutMs = 20_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ port, host: '127.0.0.1', allowHalfOpen: true })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => s.destroy(new Error(`no answer on port ${port} within ${timeoutMs} ms`)), timeoutMs)
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    s.on('end', () => {
      clearTimeout(timer)
      s.end()
      resolve(Buffer.concat(chunks))
    })
    s.end(data)
  })
}

const portOf = (listen: string): number => Number(listen.slice(listen.lastIndexOf(':') + 1))

test('an HTTP service fetched through `warren forward` (by alias) and `warren connect` (by ticket and base36 id)', async () => {
  const fwd = await b(['forward', 'a/web', '--listen', '127.0.0.1:0'])
  assert.equal(fwd.code, 0, fwd.stderr)
  const listen = fwd.stdout.trim()
  assert.match(listen, /^127\.0\.0\.1:\d+$/)
  assert.equal(fwd.stderr, `forwarding ${listen} → a/web (remove with \`warren forward --remove ${listen}\`)\n`)
  const res = await fetch(`http://${listen}/index.html`)
  assert.equal(res.status, 200)
  assert.equal(await res.text(), 'hello from web: GET /index.html\n')

  const request = 'GET /via-connect HTTP/1.0\r\nHost: web\r\n\r\n'
  const byTicket = await b(['connect', `${pair.aTicket}/web`], request)
  assert.equal(byTicket.code, 0, byTicket.stderr)
  assert.match(byTicket.stdout, /^HTTP\/1\.1 200 OK\r\n/)
  assert.match(byTicket.stdout, /\r\n\r\nhello from web: GET \/via-connect\n$/)

  const base36 = (await pair.a.identity()).idBase36
  const byId = await b(['connect', `${base36}/web`], request)
  assert.equal(byId.code, 0, byId.stderr)
  assert.match(byId.stdout, /hello from web: GET \/via-connect\n$/)

  const list = JSON.parse((await b(['forward', '--list', '--json'])).stdout) as { listen: string; total: number }[]
  assert.deepEqual(
    list.map((f) => [f.listen, f.total]),
    [[listen, 1]],
  )
  const removed = await b(['forward', '--remove', listen])
  assert.equal(removed.stdout, `removed the forward on ${listen}\n`)
  await assert.rejects(exchange(portOf(listen), 'x'), /ECONNREFUSED/)
})

test('`warren connect` is binary-safe and keeps half-close: EOF on stdin still gets the whole answer', async () => {
  const data = randomBytes(1024 * 1024)
  const echoed = await b(['connect', 'a/echo'], data)
  assert.equal(echoed.code, 0, echoed.stderr)
  assert.ok(echoed.stdoutBytes.equals(data), `echo returned ${echoed.stdoutBytes.length} bytes, not the same 1 MiB`)

  // the hash server answers only after our FIN: a lost half-close would hang, a lost byte changes the hash
  const hashed = await b(['connect', 'a/hash'], data)
  assert.equal(hashed.code, 0, hashed.stderr)
  assert.equal(hashed.stdout, `${data.length} ${createHash('sha256').update(data).digest('hex')}`)
})

test('half-close and 200 concurrent connections through a forward, every byte right', async () => {
  const fwd = await b(['forward', 'a/hash', '--json'])
  const { listen } = JSON.parse(fwd.stdout) as { listen: string }
  const port = portOf(listen)
  const one = randomBytes(300_000)
  assert.equal(
    (await exchange(port, one)).toString(),
    `${one.length} ${createHash('sha256').update(one).digest('hex')}`,
  )

  const echoFwd = JSON.parse((await b(['forward', 'a/echo', '--json'])).stdout) as { listen: string }
  const payloads = Array.from({ length: 200 }, (_, i) => Buffer.concat([Buffer.from(`#${i}:`), randomBytes(16 * 1024)]))
  const started = Date.now()
  const answers = await Promise.all(payloads.map((p) => exchange(portOf(echoFwd.listen), p, 60_000)))
  const ms = Date.now() - started
  const wrongOnes = answers.map((a, i) => [a, i] as const).filter(([a, i]) => !a.equals(payloads[i]!))
  const wrong = wrongOnes.length
  if (wrong > 0) {
    console.log(
      wrongOnes
        .slice(0, 10)
        .map(([a, i]) => `${i}: got ${a.length} bytes`)
        .join('\n'),
    )
    console.log(`--- b:\n${pair.b.stderr.slice(-1500)}\n--- a:\n${pair.a.stderr.slice(-1500)}`)
  }
  assert.equal(wrong, 0, `${wrong} of 200 connections came back wrong`)
  const st = JSON.parse((await b(['status', '--json'])).stdout) as { forwards: { listen: string; total: number }[] }
  assert.equal(st.forwards.find((f) => f.listen === echoFwd.listen)?.total, 200)
  console.log(`# 200 concurrent 16 KiB echo connections through a forward: ${ms} ms`)
  await b(['forward', '--remove', listen])
  await b(['forward', '--remove', echoFwd.listen])
})

test('every failure reaches the CLI user as its exact message and exit status', async () => {
  const bId = pair.bId
  const aId = pair.aId
  const typo = `${pair.aTicket.slice(0, 20)}${pair.aTicket[20] === 'a' ? 'b' : 'a'}${pair.aTicket.slice(21)}`
  const cases: { args: string[]; code: number; stderr: string }[] = [
    {
      args: ['connect', 'a/nope'],
      code: 5,
      stderr: `warren: node ${aId} has no service "nope"\nhint: Check the name; \`warren ls ${aId}\` lists the services it lets this node use.\n`,
    },
    {
      args: ['connect', 'a/priv'],
      code: 5,
      stderr:
        `warren: node ${aId} does not allow this node to use "priv"\n` +
        `hint: Ask its owner to run \`warren allow priv ${bId}\` or to send you a \`warren invite priv\` link.\n`,
    },
    {
      args: ['connect', 'a/dead'],
      code: 5,
      stderr: TARGET_UNREACHABLE(aId),
    },
    {
      args: ['connect', 'laptop/web'],
      code: 4,
      stderr:
        'warren: "laptop" is not a node id, a ticket, or an alias in peers\n' +
        "hint: Known aliases: a. Or use the node's id or ticket from `warren id` on that node.\n",
    },
    {
      args: ['forward', 'laptop/web'],
      code: 4,
      stderr:
        'warren: "laptop" is not a node id, a ticket, or an alias in peers\n' +
        "hint: Known aliases: a. Or use the node's id or ticket from `warren id` on that node.\n",
    },
    {
      args: ['connect', '12D3KooWxyz/web'],
      code: 2,
      stderr:
        'warren: "12D3KooWxyz" is not a valid node id: it has 11 characters, a base58 node id has 52\n' +
        'hint: It looks truncated; copy it again from `warren id` on that node.\n',
    },
    {
      args: ['ping', typo],
      code: 2,
      stderr:
        'warren: ticket checksum does not match: it was truncated or mistyped\n' +
        'hint: Copy the whole ticket again from `warren id` on that node.\n',
    },
    {
      args: ['connect', `${pair.aTicket.slice(0, -7)}/web`],
      code: 2,
      stderr:
        'warren: ticket checksum does not match: it was truncated or mistyped\n' +
        'hint: Copy the whole ticket again from `warren id` on that node.\n',
    },
    {
      args: ['connect', `${OTHER_ID}/web`],
      code: 4,
      stderr:
        `warren: no address is known for node ${OTHER_ID}\n` +
        "hint: Use the node's ticket (`warren id` on that node) instead of its id, or pass --addr <multiaddr>.\n",
    },
  ]
  const results = await Promise.all(cases.map((c) => b(c.args)))
  results.forEach((r, i) => {
    const c = cases[i]!
    assert.equal(r.stderr, c.stderr, c.args.join(' '))
    assert.equal(r.code, c.code, c.args.join(' '))
    assert.equal(r.stdout, '', c.args.join(' '))
  })
  const json = await b(['ping', `${OTHER_ID}`, '--json'])
  assert.equal(json.code, 4)
  assert.equal(JSON.parse(json.stderr).error.code, 'ERR_NO_ADDRESSES')
})

test('ping shows the round trip and the direct path; --addr reaches a node known only by id', async () => {
  const aAddr = (await pair.a.identity()).addrs[0]!
  const r = await b(['ping', pair.aId, '--addr', aAddr, '--count', '2', '--interval', '10'])
  assert.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  assert.equal(lines.length, 3)
  for (const line of lines.slice(0, 2)) {
    assert.match(line, new RegExp(`^${pair.aId}: \\d+\\.\\d\\d ms via direct ${aAddr.replaceAll('/', '\\/')}`))
  }
  assert.match(lines[2]!, /^2 pings: min\/avg\/max [\d.]+\/[\d.]+\/[\d.]+ ms$/)
  const json = JSON.parse((await b(['ping', 'a', '--json'])).stdout) as {
    id: string
    path: { kind: string }
    pings: unknown[]
  }
  assert.equal(json.id, pair.aId)
  assert.equal(json.path.kind, 'direct')
  assert.equal(json.pings.length, 1)
  const status = await b(['status'])
  assert.match(status.stdout, new RegExp(`^ {2}a +${pair.aId} +direct /ip4/127\\.0\\.0\\.1/tcp/\\d+`, 'm'))
})

test('a daemon restart leaves no stale socket and the forwards come back on the same ports', async () => {
  const fwd = await b(['forward', 'a/web', '--listen', '127.0.0.1:0'])
  const listen = fwd.stdout.trim()
  assert.equal((await fetch(`http://${listen}/before`)).status, 200)

  const old = pair.b
  const exit = await old.stop('SIGTERM')
  assert.deepEqual(exit, { code: 0, signal: null })
  const gone = await access(pair.bHome.socket).then(
    () => false,
    () => true,
  )
  assert.ok(gone, 'the API socket is removed on stop')
  await assert.rejects(exchange(portOf(listen), 'x'), /ECONNREFUSED/)

  const d = await pair.restartB()
  assert.doesNotMatch(d.stderr, /stale/)
  assert.match(d.stderr, new RegExp(`forward ${listen} → a/web`))
  const res = await fetch(`http://${listen}/after`)
  assert.equal(await res.text(), 'hello from web: GET /after\n')
  const list = JSON.parse((await b(['forward', '--list', '--json'])).stdout) as { listen: string }[]
  assert.ok(
    list.some((f) => f.listen === listen),
    `${listen} is back in the list`,
  )
})

test('the client library: typed calls, WarrenErrors with codes, raw streams with half-close', async () => {
  const client = await WarrenClient.connect({ home: pair.bHome.dir })
  try {
    assert.equal((await client.id()).id, pair.bId)
    const peers = await client.peers()
    assert.deepEqual(
      peers.filter((p) => p.id === pair.aId).map((p) => [p.aliases, p.connected]),
      [[['a'], true]],
    )
    await assert.rejects(client.openStream('a', 'nope'), (err: unknown) => {
      assert.ok(isWarrenError(err, 'ERR_UNKNOWN_SERVICE'))
      assert.equal(err.message, `node ${pair.aId} has no service "nope"`)
      assert.equal(err.exitCode, 5)
      return true
    })
    const data = randomBytes(200_000)
    const stream = await client.openStream('a', 'hash')
    const chunks: Buffer[] = []
    stream.on('data', (d: Buffer) => chunks.push(d))
    stream.end(data)
    await once(stream, 'end')
    assert.equal(Buffer.concat(chunks).toString(), `${data.length} ${createHash('sha256').update(data).digest('hex')}`)
    stream.destroy()
  } finally {
    client.close()
  }
})

test('SIGTERM with a stream open: the stream fails with ERR_STREAM_ABORTED, the daemon exits 0, and the other node keeps no stream', async () => {
  const client = await pair.b.client()
  const stream = await client.openStream('a', 'echo')
  stream.write('ping')
  const [first] = (await once(stream, 'data')) as [Buffer]
  assert.equal(first.toString(), 'ping')
  // the echo stream was cut, not completed: 'error', never 'end'
  const failed = new Promise<unknown>((resolve) => {
    stream.once('end', () => resolve(new Error('the stream ended cleanly')))
    stream.once('error', resolve)
  })
  stream.resume()
  const started = Date.now()
  const exit = await pair.b.stop('SIGTERM')
  const err = await failed
  assert.ok(isWarrenError(err, 'ERR_STREAM_ABORTED'), String(err))
  assert.match(err.message, /^the stream to a\/echo was cut: |^the Warren daemon closed the stream to a\/echo before/)
  client.close()
  assert.deepEqual(exit, { code: 0, signal: null })
  assert.ok(Date.now() - started < 10_000, `stopping took ${Date.now() - started} ms`)
  assert.match(pair.b.stderr, / info {2}stopped\n$/)

  const aClient = await pair.a.client()
  try {
    await eventually(async () => (await aClient.status()).streams.active === 0, {
      timeoutMs: 5_000,
      intervalMs: 50,
      message: 'a still holds service streams after b stopped',
    })
  } finally {
    aClient.close()
  }
  await pair.restartB()
})

function TARGET_UNREACHABLE(aId: string): string {
  return (
    `warren: node ${aId} could not reach the target of "dead": connect to 127.0.0.1:${deadPort} failed: ECONNREFUSED\n` +
    "hint: The program behind the service is not running on that node, or the service's target is wrong.\n"
  )
}
