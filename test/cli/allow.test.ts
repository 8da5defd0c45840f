/**
 * `warren allow`, `warren deny` and `warren invite` against a running daemon: a Node-side node is refused, allowed,
 * denied again, each time with the CLI's exit status and the file where the list is kept; invites redeemed by a
 * Node-side node over RPC (valid, reused, forged, expired, rate-limited), each with its exact error.
 */
import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isWarrenError, type WarrenError } from '../../src/errors.ts'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode } from '../support/nodes.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { transfer } from '../support/stream-transfer.ts'

/** The error `p` rejects with (fails when it resolves). */
async function errorOf(p: Promise<unknown>): Promise<WarrenError> {
  try {
    await p
  } catch (err) {
    assert.ok(isWarrenError(err), `expected a WarrenError, got ${String(err)}`)
    return err
  }
  assert.fail('expected a rejection')
}

describe('warren allow / deny / invite against a running daemon', { timeout: 120_000 }, () => {
  let server: TestServer
  let daemon: TestDaemon
  let home: Awaited<ReturnType<typeof makeHome>>
  let client: WarrenNode
  let ticket: string
  const cli = (...args: string[]) => runCli(args, { home: home.dir })

  before(async () => {
    server = await hashServer()
    const friend = await nodeKey()
    home = await makeHome(
      testConfig({
        peers: { friend: friend.id },
        services: {
          web: { target: `/tcp/${server.port}`, allow: [] },
          open: { target: `/tcp/${server.port}`, allow: ['*'] },
          plain: `/tcp/${server.port}`,
        },
      }),
    )
    daemon = await TestDaemon.start(home)
    ticket = (await daemon.identity()).ticket
    client = await startNode()
  })

  after(async () => {
    await client?.stop()
    await daemon?.stop()
    await server?.close()
    if (home !== undefined) await removeHome(home)
  })

  /** A checksummed transfer to `web` (or the refusal). */
  const send = async (service = 'web'): Promise<void> => {
    const stream = await client.openService(ticket, service)
    const res = await transfer(stream, 1 << 20)
    assert.equal(res.answer, `${1 << 20} ${res.sha256}`)
  }

  it('a node refused, then allowed, then denied: each change saved in config.json and applied at once', async () => {
    const id = client.peerId.toString()
    const refused = await errorOf(send())
    assert.equal(refused.code, 'ERR_NOT_AUTHORIZED')
    assert.equal(refused.message, `node ${(await daemon.identity()).id} does not allow this node to use "web"`)

    const allowed = await cli('allow', 'web', id, '--json')
    assert.equal(allowed.code, 0, allowed.stderr)
    assert.deepEqual(JSON.parse(allowed.stdout), {
      service: 'web',
      node: id,
      allowed: true,
      changed: true,
      allow: [id],
      source: 'config',
    })
    const saved = JSON.parse(await readFile(home.config, 'utf8')) as { services: Record<string, { allow?: string[] }> }
    assert.deepEqual(saved.services.web!.allow, [id])
    assert.equal(saved.services.plain, `/tcp/${server.port}`, 'the rest of config.json is kept as it was')
    await send()

    const again = await cli('allow', 'web', id)
    assert.equal(again.code, 0)
    assert.equal(again.stdout, `${id} may already use web (allowed: ${id}); nothing changed\n`)

    const open = await client.openService(ticket, 'web') // answered OK: in use when the node is denied
    const cut = (async () => {
      for await (const _ of open) {
        // the hash server answers only after the end of the upload, which never comes
      }
    })()
    cut.catch(() => {}) // checked below, after the CLI ran
    const denied = await cli('deny', 'web', id)
    assert.equal(denied.code, 0, denied.stderr)
    assert.equal(
      denied.stdout,
      `${id} may no longer use web; any streams it had open to it were reset (saved in config.json, applied)\nallowed: nobody\n`,
    )
    await assert.rejects(cut, 'the stream open when the node was denied is reset')
    assert.equal((await errorOf(send())).code, 'ERR_NOT_AUTHORIZED')
    const after = JSON.parse(await readFile(home.config, 'utf8')) as { services: Record<string, { allow?: string[] }> }
    assert.deepEqual(after.services.web!.allow, [])
  })

  it('a service without an allow list keeps admitting the nodes in peers when one more is allowed', async () => {
    const id = client.peerId.toString()
    const res = await cli('allow', 'plain', id, '--json')
    assert.equal(res.code, 0, res.stderr)
    assert.deepEqual(JSON.parse(res.stdout).allow, ['friend', id])
    const saved = JSON.parse(await readFile(home.config, 'utf8')) as { services: Record<string, unknown> }
    assert.deepEqual(saved.services.plain, { target: `/tcp/${server.port}`, allow: ['friend', id] })
    await send('plain')
    const deny = await cli('deny', 'plain', 'friend', '--json')
    assert.equal(deny.code, 0, deny.stderr)
    assert.deepEqual(JSON.parse(deny.stdout).allow, [id])
  })

  it('a service of `warren expose` keeps its list in state.json', async () => {
    const id = client.peerId.toString()
    const exposed = await cli('expose', 'rt', `/tcp/${server.port}`, '--allow', 'friend')
    assert.equal(exposed.code, 0, exposed.stderr)
    assert.equal((await errorOf(send('rt'))).code, 'ERR_NOT_AUTHORIZED')
    const res = await cli('allow', 'rt', id, '--json')
    assert.equal(res.code, 0, res.stderr)
    assert.equal(JSON.parse(res.stdout).source, 'runtime')
    const state = JSON.parse(await readFile(home.state, 'utf8')) as { services: Record<string, { allow?: string[] }> }
    assert.deepEqual(state.services.rt!.allow, ['friend', id])
    await send('rt')
  })

  it('bad input: a malformed node id, an unknown service, denying one node of a public service', async () => {
    const badId = await cli('allow', 'web', '12D3KooWnope')
    assert.equal(badId.code, 2)
    assert.equal(
      badId.stderr,
      'warren: "12D3KooWnope" is not a valid node id: it has 12 characters, a base58 node id has 52\n' +
        'hint: It looks truncated; copy it again from `warren id` on that node.\n',
    )
    const unknown = await cli('deny', 'nope', client.peerId.toString(), '--json')
    assert.equal(unknown.code, 6)
    assert.equal(JSON.parse(unknown.stderr).error.code, 'ERR_SERVICE_NOT_FOUND')
    assert.equal(JSON.parse(unknown.stderr).error.message, 'no service "nope" is exposed')
    const open = await cli('deny', 'open', client.peerId.toString())
    assert.equal(open.code, 2)
    assert.match(open.stderr, /^warren: service "open" is open to every node \(allow "\*"\): one cannot be denied\n/)
    const missing = await cli('allow', 'web')
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /^warren: missing required argument 'node'/)
  })

  it('two changes at once both land; a config.json left invalid is refused and kept byte for byte', async () => {
    const [a, b] = [await nodeKey(), await nodeKey()]
    const [ra, rb] = await Promise.all([cli('allow', 'web', a.id), cli('allow', 'web', b.id)])
    assert.equal(ra.code, 0, ra.stderr)
    assert.equal(rb.code, 0, rb.stderr)
    const saved = JSON.parse(await readFile(home.config, 'utf8')) as { services: Record<string, { allow?: string[] }> }
    assert.deepEqual(new Set(saved.services.web!.allow), new Set([a.id, b.id]))
    const denied = await Promise.all([cli('deny', 'web', a.id), cli('deny', 'web', b.id)])
    assert.deepEqual(
      denied.map((r) => r.code),
      [0, 0],
    )

    const good = await readFile(home.config, 'utf8')
    const broken = good.replace('"listen": [', '"listen": 5, "listen2": [')
    await writeFile(home.config, broken)
    try {
      const res = await cli('allow', 'web', a.id)
      assert.equal(res.code, 3)
      assert.match(res.stderr, /^warren: \/.+config\.json is invalid:\n {2}listen: expected array, got 5\n/)
      assert.equal(await readFile(home.config, 'utf8'), broken)
    } finally {
      await writeFile(home.config, good)
    }
  })

  it('--help explains both commands and invites', async () => {
    const allow = await cli('allow', '--help')
    assert.equal(allow.code, 0)
    assert.match(allow.stdout, /Usage: warren allow \[options\] <service> <node>/)
    const invite = await cli('invite', '--help')
    assert.equal(invite.code, 0)
    assert.match(invite.stdout, /--ttl <duration>/)
    assert.match(invite.stdout, /_invite\.redeem/)
  })

  describe('invites redeemed by a Node-side node', () => {
    const invite = async (...args: string[]) => {
      const res = await cli('invite', 'web', '--web', 'https://relay.example/', '--json', ...args)
      assert.equal(res.code, 0, res.stderr)
      return JSON.parse(res.stdout) as {
        inviteId: string
        code: string
        link: string
        expiresAt: string
        ticket: string
      }
    }
    const redeem = (node: WarrenNode, code: string, service = 'web') =>
      node.callNode(ticket, '_invite.redeem', { service, code })

    it('a valid invite admits the redeeming node, once; invites.json holds only hashes, mode 0600', async () => {
      const inv = await invite()
      assert.match(inv.code, /^[A-Za-z0-9_-]{43}$/)
      assert.equal(inv.link, `https://relay.example/#${inv.ticket}/web?invite=${inv.code}`)
      const file = join(home.dir, 'invites.json')
      assert.equal((await stat(file)).mode & 0o777, 0o600)
      assert.ok(!(await readFile(file, 'utf8')).includes(inv.code), 'the code itself is never stored')

      const guest = await startNode()
      try {
        assert.equal((await errorOf(guest.openService(ticket, 'web'))).code, 'ERR_NOT_AUTHORIZED')
        const res = await redeem(guest, inv.code)
        assert.deepEqual(res.result, { service: 'web', node: guest.peerId.toString(), already: false })
        const stream = await guest.openService(ticket, 'web')
        const t = await transfer(stream, 1 << 20)
        assert.equal(t.answer, `${1 << 20} ${t.sha256}`)
        assert.deepEqual((await redeem(guest, inv.code)).result, {
          service: 'web',
          node: guest.peerId.toString(),
          already: true,
        })
        const used = await errorOf(redeem(client, inv.code))
        assert.equal(used.code, 'ERR_INVITE_USED')
        assert.equal(
          used.message,
          `node ${(await daemon.identity()).id}: this invite to "web" was already redeemed by another node`,
        )
      } finally {
        await guest.stop()
      }
    })

    it('a forged code, a code for another service and an expired code are refused with their errors', async () => {
      const forged = await errorOf(redeem(client, 'A'.repeat(43)))
      assert.equal(forged.code, 'ERR_INVITE_INVALID')
      assert.equal(
        forged.message,
        `node ${(await daemon.identity()).id}: this invite code is not valid for service "web"`,
      )
      const inv = await invite()
      assert.equal((await errorOf(redeem(client, inv.code, 'plain'))).code, 'ERR_INVITE_INVALID')

      const short = await invite('--ttl', '1s')
      await eventually(() => Date.now() > Date.parse(short.expiresAt) + 50, { timeoutMs: 5_000 })
      const expired = await errorOf(redeem(client, short.code))
      assert.equal(expired.code, 'ERR_INVITE_EXPIRED')
      assert.equal(
        expired.message,
        `node ${(await daemon.identity()).id}: this invite to "web" expired ${short.expiresAt}`,
      )
      assert.equal((await errorOf(send())).code, 'ERR_NOT_AUTHORIZED', 'no failed invite admitted the node')
    })

    it('after 5 failed codes a node is refused for a while, even with a valid code', async () => {
      const guest = await startNode()
      try {
        for (let i = 0; i < 5; i++)
          assert.equal((await errorOf(redeem(guest, `${i}`.repeat(43)))).code, 'ERR_INVITE_INVALID')
        const inv = await invite()
        const limited = await errorOf(redeem(guest, inv.code))
        assert.equal(limited.code, 'ERR_INVITE_RATE_LIMITED')
        assert.match(limited.message, /: 5 failed invite codes lately: try again in \d+ s$/)
        assert.equal((await errorOf(guest.openService(ticket, 'web'))).code, 'ERR_NOT_AUTHORIZED')
      } finally {
        await guest.stop()
      }
    })

    it('the human output names the link, the code and how another node redeems it', async () => {
      const ident = await daemon.identity()
      const res = await cli('invite', 'web', '--ttl', '2h')
      assert.equal(res.code, 0, res.stderr)
      const lines = res.stdout.split('\n')
      assert.match(lines[0]!, /^invite [0-9a-f]{12} to web, works once, for 2h \(until \d{4}-\d\d-\d\dT[\d:.]+Z\)$/)
      const code = /^code: ([A-Za-z0-9_-]{43})$/.exec(lines[3]!)?.[1]
      assert.ok(code !== undefined, res.stdout)
      assert.equal(lines[1], `link: <web app>/#${ident.ticket}/web?invite=${code}`)
      assert.equal(
        lines[2],
        '  (no relay with a DNS name in config `relays`: give --web <url of the web app> for a whole link)',
      )
      assert.equal(
        lines[4],
        `another node: warren call ${ident.id}._invite.redeem '{"service":"web","code":"${code}"}'`,
      )
      const own = await cli('invite', 'web', '--web', 'https://relay.example:8443/app', '--service-origin', '--json')
      const inv = JSON.parse(own.stdout) as { code: string; link: string }
      assert.equal(inv.link, `https://web.${ident.idBase36}.relay.example:8443/.warren/invite#invite=${inv.code}`)
    })

    it('--list shows the invites without their codes; --revoke makes one stop working', async () => {
      const inv = await invite()
      const list = await cli('invite', '--list', '--json')
      assert.equal(list.code, 0, list.stderr)
      assert.ok(!list.stdout.includes(inv.code))
      const entry = (JSON.parse(list.stdout) as { inviteId: string; state: string; service: string }[]).find(
        (i) => i.inviteId === inv.inviteId,
      )
      assert.deepEqual([entry?.service, entry?.state], ['web', 'open'])
      const human = await cli('invite', '--list')
      assert.match(
        human.stdout,
        new RegExp(`^${inv.inviteId}  web  open, until ${inv.expiresAt.replace(/\./g, '\\.')}$`, 'm'),
      )
      assert.match(human.stdout, /^[0-9a-f]{12} {2}web {2}redeemed \S+ by 12D3KooW\w+$/m)

      const revoked = await cli('invite', '--revoke', inv.inviteId)
      assert.equal(revoked.code, 0, revoked.stderr)
      assert.equal(revoked.stdout, `revoked invite ${inv.inviteId} to web (it was open); its code no longer works\n`)
      const guest = await startNode()
      try {
        assert.equal((await errorOf(redeem(guest, inv.code))).code, 'ERR_INVITE_INVALID')
      } finally {
        await guest.stop()
      }
      const again = await cli('invite', '--revoke', inv.inviteId)
      assert.equal(again.code, 6)
      assert.equal(
        again.stderr,
        `warren: no invite "${inv.inviteId}" is kept on this node\nhint: \`warren invite --list\` shows the invites and their ids.\n`,
      )
      const none = await cli('invite')
      assert.equal(none.code, 2)
      assert.match(none.stderr, /^warren: give a service to invite to, or --list, or --revoke <invite id>\n/)
    })

    it('bad input: a bad --ttl, an unknown service', async () => {
      const ttl = await cli('invite', 'web', '--ttl', '15 minutes')
      assert.equal(ttl.code, 2)
      assert.match(ttl.stderr, /^warren: --ttl "15 minutes" is not a duration\n/)
      const long = await cli('invite', 'web', '--ttl', '31d')
      assert.equal(long.code, 2)
      assert.match(long.stderr, /^warren: an invite's time to live must be 1 s to 30 days, not 2678400000 ms\n/)
      const unknown = await cli('invite', 'nope')
      assert.equal(unknown.code, 6)
      assert.match(unknown.stderr, /^warren: no service "nope" is exposed\n/)
      const web = await cli('invite', 'web', '--web', 'ftp://x/')
      assert.equal(web.code, 2)
      assert.match(web.stderr, /^warren: --web "ftp:\/\/x\/" is not an http\(s\) URL\n/)
    })
  })
})
