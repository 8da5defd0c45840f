import { existsSync } from 'node:fs'
import { findPostgres, startCluster } from '../support/postgres.ts'
import { SSHD, startSshd } from '../support/sshd.ts'

const pg = findPostgres()
if ('missing' in pg || !existsSync(SSHD) || !existsSync('/usr/bin/ssh')) {
  process.stdout.write(
    `${JSON.stringify({ skip: 'missing' in pg ? pg.missing : 'needs openssh-server and openssh-client' })}\n`,
  )
  process.exit(0)
}
const cluster = await startCluster(pg.bin)
const sshd = await startSshd({ timeoutMs: 15_000 })
process.stdout.write(`${JSON.stringify({ pg: cluster.port, psqlBin: pg.bin, ssh: sshd.port, key: sshd.userKey })}\n`)
process.stdin.resume()
process.stdin.on('end', async () => {
  await sshd.stop()
  await cluster.stop()
  process.exit(0)
})
