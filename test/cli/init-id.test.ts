/**
 * `warren init`, `warren id` and the errors a user meets before any daemon runs, through the real CLI process.
 */
import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { decodeTicket } from '../../src/identity/ticket.ts'
import { runCli } from '../support/cli.ts'

let root: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'wcli-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777

test('init creates a private home, a 0600 key and a default config; id prints both id forms and a ticket', async () => {
  const home = join(root, 'a')
  const init = await runCli(['init', '--json'], { home })
  assert.equal(init.code, 0, init.stderr)
  const out = JSON.parse(init.stdout) as { id: string; idBase36: string; key: string; config: string }
  assert.match(out.id, /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/)
  assert.match(out.idBase36, /^k51qzi5uqu5[a-z0-9]{51}$/)
  assert.equal(await mode(home), 0o700)
  assert.equal(await mode(join(home, 'key')), 0o600)
  assert.deepEqual(JSON.parse(await readFile(join(home, 'config.json'), 'utf8')), {
    listen: ['/ip4/0.0.0.0/tcp/4781'],
    peers: {},
    services: {},
  })

  const id = await runCli(['id', '--json'], { home })
  assert.equal(id.code, 0, id.stderr)
  const ident = JSON.parse(id.stdout) as {
    id: string
    idBase36: string
    ticket: string
    addrs: string[]
    live: boolean
  }
  assert.equal(ident.id, out.id)
  assert.equal(ident.idBase36, out.idBase36)
  assert.equal(ident.live, false)
  // 0.0.0.0 is not dialable, so the offline ticket carries no address
  assert.deepEqual(ident.addrs, [])
  assert.equal(decodeTicket(ident.ticket).id.toString(), out.id)

  const text = await runCli(['id'], { home })
  assert.equal(text.code, 0)
  assert.match(text.stdout, new RegExp(`^node id +${out.id}$`, 'm'))
  assert.match(text.stdout, new RegExp(`^base36 +${out.idBase36}$`, 'm'))
  assert.match(text.stdout, new RegExp(`^ticket +${ident.ticket}$`, 'm'))
  assert.match(text.stdout, /none known: start the daemon with `warren up`/)
})

test('init --listen puts dialable addresses in the offline ticket; a bad --listen is refused', async () => {
  const home = join(root, 'listen')
  const init = await runCli([
    '--home',
    home,
    'init',
    '--listen',
    '/ip4/127.0.0.1/tcp/4999',
    '--listen',
    '/ip4/0.0.0.0/tcp/5000',
  ])
  assert.equal(init.code, 0, init.stderr)
  const id = JSON.parse((await runCli(['--home', home, 'id', '--json'])).stdout) as { ticket: string; addrs: string[] }
  assert.deepEqual(id.addrs, ['/ip4/127.0.0.1/tcp/4999'])
  assert.deepEqual(decodeTicket(id.ticket).addrs.map(String), ['/ip4/127.0.0.1/tcp/4999'])

  const bad = await runCli(['init', '--listen', '/bad/1'], { home: join(root, 'bad-listen') })
  assert.equal(bad.code, 2)
  assert.equal(
    bad.stderr,
    'warren: --listen: "/bad/1" is not a valid multiaddr (Protocol bad was unknown)\n' +
      'hint: Give a multiaddr such as /ip4/0.0.0.0/tcp/4781 or /ip4/127.0.0.1/tcp/0.\n',
  )
})

test('init refuses to overwrite without --force; --force makes a new identity', async () => {
  const home = join(root, 'force')
  const first = JSON.parse((await runCli(['init', '--json'], { home })).stdout) as { id: string }
  const again = await runCli(['init'], { home })
  assert.equal(again.code, 3)
  assert.equal(again.stdout, '')
  assert.equal(
    again.stderr,
    `warren: ${home} already has a key and config.json\n` +
      'hint: Use `warren init --force` to replace them (the node id changes), or pick another home with --home or WARREN_HOME.\n',
  )
  const json = await runCli(['init', '--json'], { home })
  assert.equal(json.code, 3)
  assert.deepEqual(JSON.parse(json.stderr).error.code, 'ERR_HOME_EXISTS')

  const forced = await runCli(['init', '--force', '--json'], { home })
  assert.equal(forced.code, 0, forced.stderr)
  assert.notEqual((JSON.parse(forced.stdout) as { id: string }).id, first.id)
  assert.equal(await mode(join(home, 'key')), 0o600)
})

test('a key readable by others is refused by id and up, saying how to fix it', async () => {
  const home = join(root, 'perm')
  assert.equal((await runCli(['init'], { home })).code, 0)
  const key = join(home, 'key')
  await chmod(key, 0o644)
  const expected = `warren: key file ${key} has mode 644; other users could read it\nhint: Run \`chmod 600 ${key}\`, then start again.\n`
  for (const cmd of ['id', 'up']) {
    const r = await runCli([cmd], { home })
    assert.equal(r.code, 3, `${cmd}: ${r.stderr}`)
    assert.equal(r.stderr, expected)
  }
  await chmod(key, 0o600)
  assert.equal((await runCli(['id'], { home })).code, 0)
})

test('an invalid config stops the daemon with the field path, the bad value and the fix', async () => {
  const home = join(root, 'badcfg')
  assert.equal((await runCli(['init', '--listen', '/ip4/127.0.0.1/tcp/0'], { home })).code, 0)
  const config = join(home, 'config.json')
  await writeFile(config, JSON.stringify({ listen: ['/ip4/127.0.0.1/tcp/0'], services: { web: '/tcp/99999' } }))
  const r = await runCli(['up'], { home })
  assert.equal(r.code, 3)
  assert.equal(
    r.stderr,
    `warren: ${config} is invalid:\n  services.web.target: "/tcp/99999" is not a valid port (1-65535)\n` +
      'hint: Fix the fields named above; docs/config.md describes every key.\n',
  )
  await writeFile(config, '{"listen": [,]}')
  const parse = await runCli(['up'], { home })
  assert.equal(parse.code, 3)
  assert.match(
    parse.stderr,
    new RegExp(
      `^warren: ${config} is not valid JSON: .+\nhint: Fix the JSON syntax \\(no comments or trailing commas\\)\\.\n$`,
    ),
  )
})

test('an uninitialised home: id and up say to run warren init', async () => {
  const home = join(root, 'empty')
  for (const cmd of ['id', 'up']) {
    const r = await runCli([cmd], { home })
    assert.equal(r.code, 3)
    assert.equal(
      r.stderr,
      `warren: no key at ${join(home, 'key')}\nhint: Run \`warren init\` first (set WARREN_HOME to use another home).\n`,
    )
  }
})

test('commands that need the daemon say none is running and how to start one', async () => {
  const home = join(root, 'nodaemon')
  assert.equal((await runCli(['init'], { home })).code, 0)
  const expected = `warren: no Warren daemon is running for ${home}\nhint: start one with \`warren up\`\n`
  for (const args of [
    ['status'],
    ['expose', 'web', '/tcp/8080'],
    ['unexpose', 'web'],
    ['forward', 'laptop/db', '--listen', '127.0.0.1:0'],
    ['forward', '--list'],
    ['connect', 'laptop/ssh'],
    ['ping', 'laptop'],
    ['down'],
  ]) {
    const r = await runCli(args, { home })
    assert.equal(r.code, 7, args.join(' '))
    assert.equal(r.stderr, expected, args.join(' '))
  }
  const json = await runCli(['status', '--json'], { home })
  assert.deepEqual(JSON.parse(json.stderr), {
    error: {
      code: 'ERR_DAEMON_NOT_RUNNING',
      message: `no Warren daemon is running for ${home}`,
      hint: 'start one with `warren up`',
      details: { home },
    },
  })
})

test('usage errors: exit 2 with the problem and where to read more; --help works on every command', async () => {
  const cases: [string[], string][] = [
    [['expose', 'web'], "warren: missing required argument 'target'\nhint: See `warren expose --help`.\n"],
    [['frobnicate'], "warren: unknown command 'frobnicate'\nhint: See `warren --help`.\n"],
    [['forwrd'], "warren: unknown command 'forwrd'\nhint: Did you mean forward? See `warren --help`.\n"],
    [
      ['connect', 'laptop'],
      'warren: "laptop" is not <node>/<service>\nhint: Name the node (alias, node id or ticket) and the service, e.g. laptop/web or 12D3KooW…/ssh.\n',
    ],
    [
      ['connect', 'laptop/Web'],
      'warren: "Web" is not a valid service name\nhint: Service names are 1-63 lowercase letters, digits and inner hyphens, e.g. web or my-db.\n',
    ],
    [
      ['ping', 'laptop', '--count', '0'],
      'warren: --count "0" is not a whole number from 1 to 10000\nhint: For example --count 3.\n',
    ],
    [
      ['forward'],
      'warren: forward needs <node>/<service> (or --list, or --remove <host:port>)\nhint: For example: `warren forward laptop/db --listen 127.0.0.1:5432`.\n',
    ],
  ]
  const home = join(root, 'usage')
  assert.equal((await runCli(['init'], { home })).code, 0)
  for (const [args, stderr] of cases) {
    const r = await runCli(args, { home })
    assert.equal(r.code, 2, args.join(' '))
    assert.equal(r.stderr, stderr, args.join(' '))
  }
  for (const cmd of ['init', 'id', 'up', 'down', 'status', 'expose', 'unexpose', 'forward', 'connect', 'ping']) {
    const r = await runCli([cmd, '--help'])
    assert.equal(r.code, 0, cmd)
    assert.match(r.stdout, new RegExp(`^Usage: warren ${cmd} `), cmd)
  }
  const top = await runCli(['--help'])
  assert.equal(top.code, 0)
  assert.match(top.stdout, /Start here: `warren init`, then `warren up`/)
})
