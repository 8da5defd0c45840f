/**
 * What a new user meets first, through the real CLI: each bad input gets the exact message and exit status.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { validateConfig } from '../../src/config/load.ts'
import { decodeTicket, encodeTicket } from '../../src/identity/ticket.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon } from '../support/daemon.ts'
import { freePort } from '../support/servers.ts'

const ID = '12D3KooWCx7T6bLPNevU3WZwedrjs54DphKzni3oX9oJ9RTndp2L'

describe('before any daemon runs', () => {
  let root: string
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'wre-'))
  })
  after(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('warren status on a home that was never initialised says to run warren init (exit 3)', async () => {
    const home = join(root, 'never')
    const r = await runCli(['status'], { home })
    assert.equal(r.code, 3)
    assert.equal(
      r.stderr,
      `warren: ${home} is not a Warren home yet (it has no key)\n` +
        'hint: Run `warren init` first, then start the node with `warren up` (set WARREN_HOME to use another home).\n',
    )
    const j = await runCli(['status', '--json'], { home })
    assert.equal(JSON.parse(j.stderr).error.code, 'ERR_HOME_NOT_INITIALIZED')
  })

  it('warren up --listen 19003 is refused with the multiaddr it probably meant (exit 2)', async () => {
    const home = join(root, 'up')
    assert.equal((await runCli(['init'], { home })).code, 0)
    const r = await runCli(['up', '--listen', '19003'], { home })
    assert.equal(r.code, 2)
    assert.equal(
      r.stderr,
      'warren: --listen "19003" is not a multiaddr: a node listen address is a multiaddr, starting with "/"\n' +
        'hint: Write --listen /ip4/0.0.0.0/tcp/19003 (host:port and bare ports are for `warren forward --listen`).\n',
    )
    const hp = await runCli(['up', '--listen', '127.0.0.1:19003'], { home })
    assert.equal(hp.code, 2)
    assert.match(hp.stderr, /^hint: Write --listen \/ip4\/127\.0\.0\.1\/tcp\/19003 /m)
  })
})

describe('node ids and tickets', () => {
  it('a node id with a character base58 does not use names it, without a library message', () => {
    const bad = `${ID.slice(0, 20)}0${ID.slice(21)}`
    assert.throws(
      () => validateConfig({ peers: { x: bad } }),
      (err: Error) => {
        assert.doesNotMatch(err.message, /\(Invalid|Non-base58/)
        return true
      },
    )
  })

  it('a ticket whose last character is mistyped says the checksum does not match', async () => {
    const { multiaddr } = await import('@multiformats/multiaddr')
    const { peerIdFromString } = await import('@libp2p/peer-id')
    const ticket = encodeTicket({ id: peerIdFromString(ID), addrs: [multiaddr('/ip4/127.0.0.1/tcp/4781')] })
    // its last character carries spare bits, which must be 0: "b" (value 1) sets one, as a typo does
    assert.notEqual(((ticket.length - 'warren'.length) * 5) % 8, 0)
    const typo = `${ticket.slice(0, -1)}b`
    assert.throws(() => decodeTicket(typo), {
      code: 'ERR_BAD_TICKET',
      message: 'ticket checksum does not match: it was truncated or mistyped',
    })
    assert.throws(() => decodeTicket(ticket.slice(0, -1)), { code: 'ERR_BAD_TICKET' })
  })
})

describe('validateConfig lists every problem at once', () => {
  it('an unknown alias in allow is reported along with a bad field elsewhere', () => {
    assert.throws(
      () => validateConfig({ listen: 'nope', services: { db: { target: '/tcp/5432', allow: ['laptop'] } } }),
      (err: Error & { code?: string; details?: { problems: string[] } }) => {
        assert.equal(err.code, 'ERR_CONFIG_INVALID')
        assert.equal(err.details?.problems.length, 2)
        assert.equal(
          err.details?.problems[1],
          'services.db.allow[0]: "laptop" is not an alias in peers (add "peers": { "laptop": "<node id>" } or use the node id)',
        )
        return true
      },
    )
  })
})

describe('with a daemon', () => {
  let d: TestDaemon
  before(async () => {
    d = await TestDaemon.start(await makeHome())
  })
  after(async () => {
    await d.stop()
    await removeHome(d.home)
  })
  const cli = (args: string[]) => runCli(args, { home: d.home.dir })

  it('forward --listen <bare port> listens on 127.0.0.1 at that port', async () => {
    const port = await freePort()
    const r = await cli(['forward', `${ID}/web`, '--listen', String(port), '--no-check'])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `127.0.0.1:${port}\n`)
  })

  it('forward --listen :5432 (no host) is ERR_BAD_ADDRESS, exit 2', async () => {
    const r = await cli(['forward', `${ID}/web`, '--listen', ':5432', '--json'])
    assert.equal(r.code, 2)
    const e = JSON.parse(r.stderr).error
    assert.equal(e.code, 'ERR_BAD_ADDRESS')
    assert.equal(
      e.message,
      '":5432" is not a listen address: it has no host before the colon (write 127.0.0.1:port, or just the port)',
    )
  })

  it('expose with a bad target is ERR_BAD_TARGET, exit 2', async () => {
    const r = await cli(['expose', 'web', '8080'])
    assert.equal(r.code, 2)
    assert.equal(
      r.stderr,
      'warren: "8080" is not a multiaddr (it must start with "/")\n' +
        'hint: Write a target as /tcp/<port> (this machine) or /ip4/<addr>/tcp/<port>, /ip6/…, /dns4|dns6|dns/<name>/tcp/<port>.\n',
    )
    const port = await cli(['expose', 'web', '/tcp/99999', '--json'])
    assert.equal(port.code, 2)
    assert.equal(JSON.parse(port.stderr).error.code, 'ERR_BAD_TARGET')
  })

  it('an invalid node id names the bad character, with no library message', async () => {
    const bad = `${ID.slice(0, 20)}0${ID.slice(21)}`
    const r = await cli(['ping', bad])
    assert.equal(r.code, 2)
    assert.equal(
      r.stderr,
      `warren: "${bad}" is not a valid node id: "0" at position 21 is not a base58 character (base58 leaves out 0, O, I and l)\n` +
        'hint: A character was mistyped; copy the id again from `warren id` on that node.\n',
    )
  })
})

/** A Node older than 22 on the PATH without node_modules (Debian's system node), if there is one. */
function oldNode(): string | undefined {
  try {
    const PATH = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((p) => !p.includes('node_modules'))
      .join(delimiter)
    const path = execFileSync('sh', ['-c', 'command -v node'], { encoding: 'utf8', env: { PATH } }).trim()
    const major = Number(execFileSync(path, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }))
    return major < 22 ? path : undefined
  } catch {
    return undefined
  }
}

describe('the installed command on an old Node', () => {
  const old = oldNode()
  it('says which Node it found and how to get a newer one', { skip: old === undefined && 'no Node < 22' }, () => {
    const version = execFileSync(old!, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()
    assert.throws(
      () => execFileSync(old!, [resolve('bin/warren.js'), 'status'], { encoding: 'utf8', stdio: 'pipe' }),
      (err: { status?: number; stderr?: string }) => {
        assert.equal(err.status, 1)
        assert.equal(
          err.stderr,
          `warren: Node.js 22 or newer is required, but this is Node.js ${version} (${old}).\n` +
            '  Install Node.js 22 or newer: from https://nodejs.org/en/download, with your package manager, or with nvm\n' +
            '  (`nvm install 22`); then run warren again (`node --version` shows which Node the shell finds first).\n',
        )
        return true
      },
    )
  })
})
