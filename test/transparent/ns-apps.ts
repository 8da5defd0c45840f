/**
 * Run inside the lab namespace by the transparent-mode tests: a private PostgreSQL cluster (test/support/postgres.ts)
 * and an sshd with a fresh host key and a fresh client key, both on 127.0.0.1; prints one JSON line
 * `{ pg, psqlBin, ssh, key }` (ports, psql's directory, the client key's path) or `{ skip }` when a program is
 * missing; stops both and removes their files when stdin closes.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually } from '../support/eventually.ts'
import { findPostgres, startCluster } from '../support/postgres.ts'
import { freePort } from '../support/servers.ts'

const SSHD = '/usr/sbin/sshd'
const pg = findPostgres()
if ('missing' in pg || !existsSync(SSHD) || !existsSync('/usr/bin/ssh')) {
  process.stdout.write(
    `${JSON.stringify({ skip: 'missing' in pg ? pg.missing : 'needs openssh-server and openssh-client' })}\n`,
  )
  process.exit(0)
}
const cluster = await startCluster(pg.bin)
const dir = await mkdtemp(join(tmpdir(), 'wtssh-'))
for (const name of ['host_key', 'user_key']) {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)])
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`)
}
await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')))
await mkdir('/run/sshd', { recursive: true, mode: 0o755 })
const sshPort = await freePort()
await writeFile(
  join(dir, 'sshd_config'),
  [
    `ListenAddress 127.0.0.1:${sshPort}`,
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
const sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] })
let log = ''
sshd.stderr!.on('data', (d: Buffer) => {
  log += d.toString()
})
await eventually(() => /Server listening/.test(log), { timeoutMs: 15_000, message: `sshd listening: ${log}` })
process.stdout.write(
  `${JSON.stringify({ pg: cluster.port, psqlBin: pg.bin, ssh: sshPort, key: join(dir, 'user_key') })}\n`,
)
process.stdin.resume()
process.stdin.on('end', async () => {
  sshd.kill()
  await cluster.stop()
  await rm(dir, { recursive: true, force: true })
  process.exit(0)
})
