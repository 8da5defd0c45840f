/**
 * `warren connect` as OpenSSH's ProxyCommand: a real `ssh` client reaches a real `sshd` behind the service `ssh`
 * on the other daemon. Needs openssh-client and openssh-server (installed by .ci/run); skipped without them.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { MAIN, NODE } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { SSH, SSHD, startSshd, type TestSshd } from '../support/sshd.ts'

const missing = [SSHD, SSH].filter((p) => !existsSync(p))
const skip =
  missing.length > 0 ? `needs ${missing.join(' and ')} (apt-get install openssh-server openssh-client)` : false

let pair: DaemonPair
let sshd: TestSshd | undefined

before(async () => {
  if (skip !== false) return
  sshd = await startSshd()
  pair = await startDaemonPair({ ssh: `/tcp/${sshd.port}` })
})

after(async () => {
  await sshd?.stop()
  await pair?.close()
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
      sshd!.userKey,
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
