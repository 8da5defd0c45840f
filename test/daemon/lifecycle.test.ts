/**
 * The daemon as a process: one per home, a private API socket, runtime services kept in state.json, a clean
 * stop on SIGINT/SIGTERM/`warren down`, and recovery from a crash's leftovers.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { access, readFile, stat } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { after, test } from 'node:test'
import type { HomePaths } from '../../src/config/home.ts'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode } from '../../src/p2p/create.ts'
import { RPC_PROTOCOL } from '../../src/rpc/wire.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'

const homes: HomePaths[] = []
const daemons: TestDaemon[] = []
after(async () => {
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')))
  await Promise.all(homes.map(removeHome))
})

async function home(config?: Parameters<typeof makeHome>[0]): Promise<HomePaths> {
  const h = await makeHome(config)
  homes.push(h)
  return h
}

async function start(h: HomePaths): Promise<TestDaemon> {
  const d = await TestDaemon.start(h)
  daemons.push(d)
  return d
}

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  )

test('a running daemon: private socket and home, pid file, live id; a second daemon is refused; SIGTERM stops it cleanly', async () => {
  const h = await home()
  const d = await start(h)
  assert.equal((await stat(h.dir)).mode & 0o777, 0o700)
  const sock = await stat(h.socket)
  assert.ok(sock.isSocket())
  assert.equal(sock.mode & 0o777, 0o600)
  assert.equal((await readFile(h.pid, 'utf8')).trim(), String(d.child.pid))
  assert.match(d.stderr, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info {2}listening on \/ip4\/127\.0\.0\.1\/tcp\/\d+$/m)
  assert.match(d.stderr, new RegExp(`^\\S+ info {2}API on ${h.socket}$`, 'm'))

  const second = await runCli(['up'], { home: h.dir })
  assert.equal(second.code, 7)
  assert.equal(
    second.stderr,
    `warren: a Warren daemon (pid ${d.child.pid}) is already running for ${h.dir}\n` +
      `hint: Stop it with \`warren down\` (or \`kill ${d.child.pid}\`), or use another home with --home or WARREN_HOME.\n`,
  )
  // the refused daemon touched nothing of the running one
  assert.ok(await exists(h.socket))
  assert.equal((await readFile(h.pid, 'utf8')).trim(), String(d.child.pid))

  const id = JSON.parse((await runCli(['id', '--json'], { home: h.dir })).stdout) as { live: boolean; addrs: string[] }
  assert.equal(id.live, true)
  assert.equal(id.addrs.length, 1)
  assert.match(id.addrs[0]!, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)
  assert.equal(id.addrs[0], (await d.identity()).addrs[0])

  const exit = await d.stop('SIGTERM')
  assert.deepEqual(exit, { code: 0, signal: null })
  assert.match(d.stderr, / info {2}stopping \(SIGTERM\)\n.* info {2}stopped\n$/)
  assert.equal(await exists(h.socket), false)
  assert.equal(await exists(h.pid), false)
})

test('expose, status and unexpose at runtime; runtime services survive a restart (SIGINT), config ones stay in config', async () => {
  const h = await home(testConfig({ services: { api: '/tcp/9000' } }))
  let d = await start(h)
  const expose = await runCli(['expose', 'web', '/tcp/8080', '--allow', '*'], { home: h.dir })
  assert.equal(expose.code, 0, expose.stderr)
  assert.equal(expose.stdout, 'exposed web → /tcp/8080 (allowed: everyone)\n')
  const db = await runCli(['expose', 'db', '/ip4/10.0.0.4/tcp/5432', '--json'], { home: h.dir })
  assert.deepEqual(JSON.parse(db.stdout), {
    name: 'db',
    target: '/ip4/10.0.0.4/tcp/5432',
    kubo: false,
    source: 'runtime',
  })

  const dup = await runCli(['expose', 'web', '/tcp/8081'], { home: h.dir })
  assert.equal(dup.code, 6)
  assert.equal(
    dup.stderr,
    'warren: service "web" is already exposed\nhint: Remove it first with `warren unexpose web`, or pick another name.\n',
  )
  const replaced = await runCli(['expose', 'web', '/tcp/8081', '--allow', '*', '--replace'], { home: h.dir })
  assert.equal(replaced.code, 0, replaced.stderr)

  const badTarget = await runCli(['expose', 'x', '/tcp/99999'], { home: h.dir })
  assert.equal(badTarget.code, 2) // ERR_BAD_TARGET: a malformed argument, as docs/errors.md says
  assert.match(badTarget.stderr, /^warren: "\/tcp\/99999" is not a valid port \(1-65535\)$/m)

  const status = await runCli(['status', '--json'], { home: h.dir })
  const st = JSON.parse(status.stdout) as { services: { name: string; target: string }[] }
  assert.deepEqual(
    st.services.map((s) => `${s.name} ${s.target}`),
    ['api /tcp/9000', 'web /tcp/8081', 'db /ip4/10.0.0.4/tcp/5432'],
  )
  const text = await runCli(['status'], { home: h.dir })
  assert.match(text.stdout, /^services \(3\)\n {2}api +\/tcp\/9000 +allow: every node in peers +\(config\)$/m)
  assert.match(text.stdout, /^ {2}web +\/tcp\/8081 +allow: everyone +\(runtime\)$/m)
  assert.match(text.stdout, /^ {2}db +\/ip4\/10\.0\.0\.4\/tcp\/5432 +allow: every node in peers +\(runtime\)$/m)

  const un = await runCli(['unexpose', 'db'], { home: h.dir })
  assert.equal(un.stdout, 'unexposed db\n')
  const cfg = await runCli(['unexpose', 'api'], { home: h.dir })
  assert.equal(
    cfg.stdout,
    'unexposed api\nnote: api is defined in config.json; it comes back when the daemon restarts unless you remove it there\n',
  )
  const missing = await runCli(['unexpose', 'db'], { home: h.dir })
  assert.equal(missing.code, 6)
  assert.equal(
    missing.stderr,
    'warren: no service "db" is exposed\nhint: See the exposed services with `warren status`.\n',
  )

  assert.deepEqual((await d.stop('SIGINT')).code, 0)
  const state = JSON.parse(await readFile(h.state, 'utf8')) as { services: Record<string, unknown> }
  assert.deepEqual(state.services, { web: { target: '/tcp/8081', kubo: false, allow: ['*'] } })

  d = await start(h)
  const after = JSON.parse((await runCli(['status', '--json'], { home: h.dir })).stdout) as {
    services: { name: string; target: string; source: string }[]
  }
  assert.deepEqual(after.services, [
    { name: 'api', target: '/tcp/9000', kubo: false, source: 'config' },
    { name: 'web', target: '/tcp/8081', allow: ['*'], kubo: false, source: 'runtime' },
  ])
  assert.match(d.stderr, /restored service web → \/tcp\/8081/)

  const down = await runCli(['down'], { home: h.dir })
  assert.equal(down.code, 0, down.stderr)
  assert.equal(down.stdout, `stopped the daemon (pid ${d.child.pid})\n`)
  assert.deepEqual(await d.exited, { code: 0, signal: null })
  assert.equal(await exists(h.socket), false)
})

test('after a crash (SIGKILL) the stale pid file and socket are cleaned up and the daemon starts', async () => {
  const h = await home()
  const crashed = await start(h)
  assert.equal((await crashed.stop('SIGKILL')).signal, 'SIGKILL')
  assert.ok(await exists(h.pid), 'a killed daemon leaves its pid file')
  assert.ok(await exists(h.socket), 'a killed daemon leaves its socket')

  const none = await runCli(['status'], { home: h.dir })
  assert.equal(none.code, 7)
  assert.equal(none.stderr, `warren: no Warren daemon is running for ${h.dir}\nhint: start one with \`warren up\`\n`)

  const d = await start(h)
  assert.match(d.stderr, new RegExp(` warn {2}removed a stale pid file \\(pid ${crashed.child.pid} is gone\\)`))
  assert.match(d.stderr, new RegExp(` info {2}removed a stale API socket at ${h.socket}`))
  assert.equal((await runCli(['status'], { home: h.dir })).code, 0)
  assert.equal((await d.stop('SIGTERM')).code, 0)
})

test('a call under way when the daemon dies ends at once with ERR_API, in the library and in the CLI (exit 7)', async () => {
  // a node that takes RPC streams and never answers: the calls stay under way until the daemon is killed
  const silent = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
  let asked = 0
  await silent.handle(RPC_PROTOCOL, () => {
    asked++
  })
  try {
    const h = await home()
    const d = await start(h)
    const addr = silent.getMultiaddrs()[0]!.toString()
    const client = await d.client()
    const call = client.callNode(silent.peerId.toString(), '_ping', undefined, { addrs: [addr] }).then(
      () => new Error('the call was answered'),
      (err: unknown) => err,
    )
    const cli = runCli(['call', `${silent.peerId}._ping`, '--addr', addr], { home: h.dir })
    await eventually(() => asked === 2, { timeoutMs: 15_000, message: 'both calls reach the silent node' })
    await d.stop('SIGKILL')
    const err = await call
    assert.ok(isWarrenError(err, 'ERR_API'), String(err))
    assert.equal(err.message, 'the Warren daemon closed the connection before answering')
    await assert.rejects(client.status(), (err) => isWarrenError(err, 'ERR_API'))
    const r = await cli
    assert.equal(r.code, 7)
    assert.match(r.stderr, /^warren: the Warren daemon closed the connection before answering\n/)
  } finally {
    await silent.stop()
  }
})

/** One raw exchange on the API socket: write `text`, read until the daemon closes its side. */
async function raw(socket: string, text: string): Promise<unknown[]> {
  const s = createConnection(socket)
  const chunks: Buffer[] = []
  s.on('data', (d: Buffer) => chunks.push(d))
  s.end(text)
  await once(s, 'close')
  return Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l))
}

test('the local API speaks JSON-RPC 2.0 and answers bad requests with errors, not silence', async () => {
  const h = await home()
  const d = await start(h)
  const answers = await raw(
    h.socket,
    [
      '{"jsonrpc":"2.0","id":1,"method":"services.list"}',
      'not json',
      '{"id":3,"method":"status"}',
      '{"jsonrpc":"2.0","id":4,"method":"nope"}',
      '{"jsonrpc":"2.0","id":5,"method":"services.add","params":{"name":"web"}}',
      '{"jsonrpc":"2.0","id":6,"method":"forward.remove","params":{"listen":"127.0.0.1:1"}}',
      '',
    ].join('\n'),
  )
  const byId = new Map(answers.map((a) => [(a as { id: unknown }).id, a]))
  assert.equal(answers.length, 6)
  assert.deepEqual(byId.get(1), { jsonrpc: '2.0', id: 1, result: [] })
  assert.deepEqual((byId.get(null) as { error: { code: number } }).error.code, -32700)
  assert.deepEqual(byId.get(3), {
    jsonrpc: '2.0',
    id: 3,
    error: {
      code: -32600,
      message: 'request is not a JSON-RPC 2.0 request',
      data: {
        code: 'ERR_API',
        message: 'request is not a JSON-RPC 2.0 request',
        hint: 'Send JSON-RPC 2.0 requests, one per line, or POST them to /jsonrpc; see docs/protocol.md.',
      },
    },
  })
  assert.equal(
    (byId.get(4) as { error: { data: { message: string } } }).error.data.message,
    'unknown local API method "nope"',
  )
  assert.deepEqual((byId.get(5) as { error: unknown }).error, {
    code: -32602,
    message: 'services.add: params.target: Invalid input: expected string, received undefined',
    data: {
      code: 'ERR_USAGE',
      message: 'services.add: params.target: Invalid input: expected string, received undefined',
      hint: 'See src/daemon/api-protocol.ts for the parameters of each local API method.',
      details: {
        method: 'services.add',
        problems: ['params.target: Invalid input: expected string, received undefined'],
      },
    },
  })
  assert.equal((byId.get(6) as { error: { data: { code: string } } }).error.data.code, 'ERR_FORWARD_NOT_FOUND')
  assert.equal((await d.stop()).code, 0)
})

test('config api.socket moves the API socket; the CLI finds it there', async () => {
  const h = await home(testConfig({ api: { socket: 'other.sock' } }))
  const d = await start(h)
  const path = `${h.dir}/other.sock`
  assert.equal((await stat(path)).mode & 0o777, 0o600)
  assert.equal(await exists(h.socket), false)
  const st = await runCli(['status', '--json'], { home: h.dir })
  assert.equal(st.code, 0, st.stderr)
  assert.equal((JSON.parse(st.stdout) as { id: string }).id, (await d.identity()).id)
  assert.equal((await d.stop()).code, 0)
  assert.equal(await exists(path), false)
})
