/**
 * Unmodified ssh, psql and nc reach a real sshd, a real PostgreSQL and a hash server on another node by name, on
 * their default ports and on a random one, through transparent mode in a network namespace.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { WarrenClient } from '../../src/client/client.ts'
import { NODE } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'
import { type NsLab as Lab, NsLab, nsSkip } from './ns-lab.ts'

interface Apps {
  skip?: string
  pg: number
  psqlBin: string
  ssh: number
  key: string
}

/** Runs `argv` in the namespace with `input` on stdin; collects stdout as bytes. */
function run(
  lab: Lab,
  argv: string[],
  input: Buffer | string = '',
): Promise<{ code: number | null; out: Buffer; err: string }> {
  return new Promise((res) => {
    const child = spawn('ip', ['netns', 'exec', lab.name, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      res({ code, out: Buffer.concat(out), err })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(input)
  })
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

describe('transparent mode with ssh, psql and nc', { skip: nsSkip }, () => {
  let lab: NsLab
  let apps: Apps
  before(async () => {
    lab = await NsLab.create()
    const ports = await lab.servers()
    const child = lab.spawn(NODE, [resolve('test/transparent/ns-apps.ts')], {}, 'stdin')
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
    })
    await eventually(() => out.includes('\n'), { timeoutMs: 60_000, message: 'ns-apps started' })
    apps = JSON.parse(out.trim()) as Apps
    if (apps.skip !== undefined) return
    const a = await lab
      .daemon(
        await lab.home({
          services: {
            db: { target: `/tcp/${apps.pg}`, allow: ['*'] },
            ssh: { target: `/tcp/${apps.ssh}`, allow: ['*'] },
            hash: { target: `/tcp/${ports.hash}`, allow: ['*'] },
          },
        }),
      )
      .ready()
    const c = await WarrenClient.connect({ home: a.home })
    const ticket = (await c.id()).ticket
    c.close()
    await lab
      .daemon(await lab.home({ peers: { a: ticket }, dns: { enabled: true, listen: '127.0.0.1:53' } }), [
        '--transparent',
      ])
      .ready()
  })
  after(async () => {
    await lab?.close()
  })

  it('ssh runs a command on the far sshd by name, port 22 and a random port, 4 MiB through it', async (t) => {
    if (apps.skip !== undefined) return t.skip(apps.skip)
    const input = randomBytes(4 * 1024 * 1024)
    for (const port of ['22', '2222']) {
      const r = await run(
        lab,
        [
          'ssh',
          '-F',
          '/dev/null',
          '-i',
          apps.key,
          '-p',
          port,
          '-o',
          'StrictHostKeyChecking=no',
          '-o',
          'UserKnownHostsFile=/dev/null',
          '-o',
          'BatchMode=yes',
          'root@ssh.a.warren',
          'sha256sum',
        ],
        input,
      )
      assert.equal(r.code, 0, r.err)
      assert.equal(r.out.toString().split(' ')[0], sha(input))
    }
  })

  it('psql queries the far PostgreSQL by name, port 5432 and a random port', async (t) => {
    if (apps.skip !== undefined) return t.skip(apps.skip)
    const sql = 'copy (select i, md5(i::text) from generate_series(1, 100000) i) to stdout'
    let expected = ''
    for (let i = 1; i <= 100_000; i++) expected += `${i}\t${createHash('md5').update(String(i)).digest('hex')}\n`
    for (const port of ['5432', '15432']) {
      const r = await run(lab, [
        join(apps.psqlBin, 'psql'),
        '-h',
        'db.a.warren',
        '-p',
        port,
        '-U',
        'postgres',
        '-X',
        '-q',
        '-c',
        sql,
      ])
      assert.equal(r.code, 0, r.err)
      assert.equal(sha(r.out), sha(expected))
    }
  })

  it('nc sends a file and keeps half-close (-N), IPv4 and IPv6', async (t) => {
    if (!existsSync('/usr/bin/nc') && !existsSync('/bin/nc')) return t.skip('needs nc (apt-get install netcat-openbsd)')
    const input = randomBytes(8 * 1024 * 1024 + 3)
    for (const family of ['-4', '-6']) {
      const r = await run(lab, ['nc', family, '-N', 'hash.a.warren', '9'], input)
      assert.equal(r.code, 0, r.err)
      assert.equal(r.out.toString(), `${input.length} ${sha(input)}`)
    }
  })
})
