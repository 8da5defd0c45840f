/**
 * A real OpenSSH server on 127.0.0.1 for tests: a fresh host key and client key in a temp dir, key login only, no PAM,
 * `sshd -D -e` as a child; resolves once it listens. `stop()` kills it and removes its files.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually } from './eventually.ts'
import { freePort } from './servers.ts'

export const SSHD = '/usr/sbin/sshd'
export const SSH = '/usr/bin/ssh'

export interface TestSshd {
  port: number
  /** The client's private key (its public half is the only authorized key). */
  userKey: string
  child: ChildProcess
  stop(): Promise<void>
}

export async function startSshd(opts: { timeoutMs?: number } = {}): Promise<TestSshd> {
  const dir = await mkdtemp(join(tmpdir(), 'wssh-'))
  for (const name of ['host_key', 'user_key']) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)])
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr?.toString()}`)
  }
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')))
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
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString()
  })
  const stop = async (): Promise<void> => {
    child.kill()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await eventually(() => /Server listening/.test(log), {
      timeoutMs: opts.timeoutMs ?? 10_000,
      message: 'sshd listening',
    })
  } catch {
    await stop()
    throw new Error(`sshd did not start:\n${log}`)
  }
  return { port, userKey: join(dir, 'user_key'), child, stop }
}
