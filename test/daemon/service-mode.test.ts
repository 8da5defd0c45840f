/**
 * The daemon as a service: `warren up --detach`, `warren logs [-f]`, `warren reload` and SIGHUP (config applied
 * without dropping streams still allowed, a bad config refused while the old one keeps running), and
 * `warren service install`.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { type Socket, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { processAlive, readPidFile } from '../../src/daemon/pidfile.ts'
import { runCli, spawnCli } from '../support/cli.ts'
import { makeHome, removeHome, testConfig, writeConfig } from '../support/daemon.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { echoServer, type TestServer } from '../support/servers.ts'

describe('warren up --detach and warren logs', () => {
  let home: Awaited<ReturnType<typeof makeHome>>
  before(async () => {
    home = await makeHome()
  })
  after(async () => {
    const pid = await readPidFile(home.pid)
    await runCli(['down'], { home: home.dir })
    if (pid !== undefined && processAlive(pid)) process.kill(pid, 'SIGKILL')
    await removeHome(home)
  })

  it('logs says there is no log before the first start', async () => {
    const r = await runCli(['logs'], { home: home.dir })
    assert.equal(r.code, 7)
    assert.equal(
      r.stderr,
      `warren: no daemon log at ${home.dir}/daemon.log yet\n` +
        'hint: Start the daemon with `warren up` (or `warren up --detach`); it logs there.\n',
    )
  })

  it('returns once the API answers, says where the logs go; the log file has the daemon lines', async () => {
    const r = await runCli(['up', '--detach'], { home: home.dir })
    assert.equal(r.code, 0, r.stderr)
    const pid = await readPidFile(home.pid)
    assert.ok(pid !== undefined && processAlive(pid))
    const id = JSON.parse((await runCli(['id', '--json'], { home: home.dir })).stdout).id as string
    assert.equal(
      r.stdout,
      `started the daemon in the background (pid ${pid}), node ${id}\n` +
        `logs: ${home.dir}/daemon.log (\`warren logs -f\`); stop it with \`warren down\`\n`,
    )
    const st = await runCli(['status', '--json'], { home: home.dir })
    assert.equal(st.code, 0)
    const logs = await runCli(['logs', '-n', '1'], { home: home.dir })
    assert.equal(logs.code, 0)
    assert.match(logs.stdout, /^\S+Z info {2}ready\n$/)
  })

  it('a second --detach on the same home is refused (exit 7)', async () => {
    const pid = await readPidFile(home.pid)
    const r = await runCli(['up', '--detach'], { home: home.dir })
    assert.equal(r.code, 7)
    assert.equal(r.stderr.split('\n')[0], `warren: a Warren daemon (pid ${pid}) is already running for ${home.dir}`)
  })

  it('logs -f prints lines as the daemon writes them', async () => {
    const follower = spawnCli(['logs', '-f', '-n', '0'], { home: home.dir })
    let out = ''
    follower.stdout!.on('data', (d: Buffer) => {
      out += d.toString('utf8')
    })
    try {
      // the follower starts at the end of the file once it runs: lines written before that are not its to show, so
      // expose services until one of them shows (each expose writes one line)
      let n = 0
      await eventually(
        async () => {
          const ex = await runCli(['expose', `web${++n}`, '/tcp/8080'], { home: home.dir })
          assert.equal(ex.code, 0, ex.stderr)
          return / info {2}exposed web\d+ → \/tcp\/8080\n/.test(out)
        },
        { message: 'logs -f shows the new line', intervalMs: 200 },
      )
      assert.doesNotMatch(out, /ready/, '-n 0 starts at the end')
    } finally {
      follower.kill('SIGINT')
    }
  })
})

describe('warren reload and SIGHUP', () => {
  let pair: DaemonPair
  let echo: TestServer
  before(async () => {
    echo = await echoServer()
    pair = await startDaemonPair({ echo: `/tcp/${echo.port}`, other: `/tcp/${echo.port}` })
  })
  after(async () => {
    await pair?.close()
    await echo?.close()
  })

  const config = async (): Promise<Record<string, unknown>> =>
    JSON.parse(await readFile(pair.aHome.config, 'utf8')) as Record<string, unknown>

  /** A forward on b to a/echo and one client connection through it. */
  async function openEcho(): Promise<{
    socket: Socket
    echoed(bytes: Buffer): Promise<void>
    closed: Promise<string>
  }> {
    const fwd = await runCli(['forward', 'a/echo', '--listen', '127.0.0.1:0', '--no-check'], { home: pair.bHome.dir })
    assert.equal(fwd.code, 0, fwd.stderr)
    const [host, port] = fwd.stdout.trim().split(':')
    const socket = tcpConnect({ host: host!, port: Number(port), allowHalfOpen: true })
    let got = Buffer.alloc(0)
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d])
    })
    const closed = new Promise<string>((r) => {
      socket.once('error', (e) => r(e.message))
      socket.once('close', () => r('closed'))
    })
    return {
      socket,
      closed,
      async echoed(bytes: Buffer) {
        const start = got.length
        socket.write(bytes)
        await eventually(() => got.length >= start + bytes.length, { message: 'the echo came back' })
        const back = got.subarray(start, start + bytes.length)
        assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(bytes).digest('hex'))
      },
    }
  }

  it('applies services and allow lists; a stream still allowed keeps running', async () => {
    const conn = await openEcho()
    await conn.echoed(Buffer.alloc(64 * 1024, 1))
    const cfg = await config()
    cfg.services = { echo: `/tcp/${echo.port}`, added: `/tcp/${echo.port}` } // "other" removed, "added" added
    cfg.limits = { maxStreams: 100 }
    await writeConfig(pair.aHome, cfg)
    const r = await runCli(['reload'], { home: pair.aHome.dir })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(
      r.stdout,
      'reloaded config.json\nservices added: added\nservices removed: other\nlimits: maxStreams\n' +
        // the pair pinned a's port in config.json after its first start (port 0): a restart takes it
        'changed, taking effect at the next start (warren down, warren up): listen\n',
    )
    await conn.echoed(Buffer.alloc(256 * 1024, 2))
    const st = JSON.parse((await runCli(['status', '--json'], { home: pair.aHome.dir })).stdout)
    assert.deepEqual(st.services.map((s: { name: string }) => s.name).sort(), ['added', 'echo'])
    await pair.a.waitForLog(
      / info {2}reloaded .*config\.json: services added added; services removed other; limits maxStreams$/m,
    )
    conn.socket.end()
  })

  it('refuses a bad config with its field paths (exit 3) and keeps the old one running', async () => {
    const conn = await openEcho()
    const good = await config()
    await writeConfig(pair.aHome, { ...good, services: { echo: '/tcp/99999' }, alow: [] })
    const r = await runCli(['reload'], { home: pair.aHome.dir })
    assert.equal(r.code, 3)
    assert.equal(
      r.stderr,
      `warren: ${pair.aHome.config} is invalid:\n` +
        '  services.echo.target: "/tcp/99999" is not a valid port (1-65535)\n' +
        '  unknown key "alow" (see docs/config.md for the keys)\n' +
        'hint: Fix the fields named above; docs/config.md describes every key.\n',
    )
    await conn.echoed(Buffer.alloc(32 * 1024, 3))
    const st = JSON.parse((await runCli(['status', '--json'], { home: pair.aHome.dir })).stdout)
    assert.deepEqual(st.services.map((s: { name: string }) => s.name).sort(), ['added', 'echo'])
    await writeConfig(pair.aHome, good)
    conn.socket.end()
  })

  it('SIGHUP reloads too, and no longer kills the daemon; a stream no longer allowed is reset', async () => {
    const conn = await openEcho()
    await conn.echoed(Buffer.alloc(1024, 4))
    const cfg = await config()
    cfg.services = { echo: { target: `/tcp/${echo.port}`, allow: [] } } // nobody may use echo now
    await writeConfig(pair.aHome, cfg)
    pair.a.child.kill('SIGHUP')
    await pair.a.waitForLog(/ info {2}reloaded .*config\.json: services changed echo; services removed added/m)
    assert.equal(pair.a.child.exitCode, null, 'the daemon still runs')
    assert.notEqual(await conn.closed, '', 'the stream no longer allowed was cut')
    await pair.a.waitForLog(/access revoked: reset the stream of .* to "echo"/m)
    const st = await runCli(['status'], { home: pair.aHome.dir })
    assert.equal(st.code, 0)
  })
})

describe('warren service install', () => {
  let xdg: string
  let home: Awaited<ReturnType<typeof makeHome>>
  before(async () => {
    xdg = await mkdtemp(join(tmpdir(), 'wsvc-'))
    home = await makeHome(testConfig())
  })
  after(async () => {
    await rm(xdg, { recursive: true, force: true })
    await removeHome(home)
  })

  it('--print shows the unit and writes nothing; install writes it once, --force replaces it', async () => {
    const env = { XDG_CONFIG_HOME: xdg }
    const printed = await runCli(['service', 'install', '--print'], { home: home.dir, env })
    assert.equal(printed.code, 0, printed.stderr)
    const repo = process.cwd()
    assert.equal(
      printed.stdout,
      `[Unit]
Description=Warren node (${home.dir})
Documentation=file://${repo}/docs/observability.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
Environment=WARREN_HOME=${home.dir}
ExecStart=${join(repo, 'node_modules/node/bin/node')} ${repo}/bin/warren.js up
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# the daemon stops cleanly on SIGTERM: listeners closed, streams ended
TimeoutStopSec=30

[Install]
WantedBy=default.target
`,
    )
    const unit = join(xdg, 'systemd', 'user', 'warren.service')
    assert.equal(existsSync(unit), false)
    const r = await runCli(['service', 'install'], { home: home.dir, env })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout.split('\n')[0], `wrote ${unit}`)
    assert.equal(await readFile(unit, 'utf8'), printed.stdout)
    const again = await runCli(['service', 'install'], { home: home.dir, env })
    assert.equal(again.code, 6)
    assert.equal(
      again.stderr,
      `warren: ${unit} exists already\nhint: Replace it with \`warren service install --force\`, or choose another name with --name.\n`,
    )
    assert.equal((await runCli(['service', 'install', '--force'], { home: home.dir, env })).code, 0)
  })
})
