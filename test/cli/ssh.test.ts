/**
 * `warren connect` as OpenSSH's ProxyCommand: a real `ssh` client reaches a real `sshd` behind the service `ssh`
 * on the other daemon. Needs openssh-client and openssh-server (installed by .ci/run); skipped without them.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { MAIN, NODE } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { freePort } from '../support/servers.ts'

const SSHD = '/usr/sbin/sshd'
const SSH = '/usr/bin/ssh'
const missing = [SSHD, SSH].filter((p) => !existsSync(p))
const skip =
  missing.length > 0 ? `needs ${missing.join(' and ')} (apt-get install openssh-server openssh-client)` : false

let dir: string
let pair: DaemonPair
let sshd: ReturnType<typeof spawn> | undefined

before(async () => {
  if (skip !== false) return
  dir = await mkdtemp(join(tmpdir(), 'wssh-'))
  for (const name of ['host_key', 'user_key']) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)])
    assert.equal(r.status, 0, r.stderr?.toString())
  }
  await writeFile(join(dir, 'authorized_keys'), spawnSync('cat', [join(dir, 'user_key.pub')]).stdout)
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 }) // sshd's privilege-separation directory
  const port = await freePort()
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1:${port}`,
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      `PidFile ${join(dir, 'sshd.pid')}`,
      '',
    ].join('\n'),
  )
  sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  sshd.stderr!.on('data', (d: Buffer) => {
    log += d.toString()
  })
  await eventually(() => /Server listening/.test(log), { message: 'sshd listening' }).catch(() => {
    assert.fail(`sshd did not start:\n${log}`)
  })
  pair = await startDaemonPair({ ssh: `/tcp/${port}` })
})

after(async () => {
  sshd?.kill()
  await pair?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

function ssh(command: string, input: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    SSH,
    [
      '-F',
      '/dev/null',
      '-o',
      `ProxyCommand=${NODE} ${MAIN} connect a/ssh`,
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
      '-i',
      join(dir, 'user_key'),
      `${process.env.USER ?? 'root'}@warren-a`,
      command,
    ],
    { env: { ...process.env, WARREN_HOME: pair.bHome.dir }, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  child.stdin!.end(input)
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    }),
  )
}

test('ssh with ProxyCommand `warren connect a/ssh` logs in, moves 8 MiB intact both ways and exits', {
  skip,
}, async () => {
  const data = randomBytes(8 * 1024 * 1024)
  const r = await ssh('sha256sum; head -c 8388608 /dev/zero | sha256sum', data)
  assert.equal(r.code, 0, r.stderr)
  const zeros = createHash('sha256')
    .update(Buffer.alloc(8 * 1024 * 1024))
    .digest('hex')
  assert.equal(r.stdout, `${createHash('sha256').update(data).digest('hex')}  -\n${zeros}  -\n`)
})
