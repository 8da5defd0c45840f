/**
 * A private PostgreSQL cluster for tests: Debian's server binaries (/usr/lib/postgresql/<version>/bin), a data
 * directory in a fresh temp dir, trust authentication on 127.0.0.1 and the cluster's own Unix socket only, the
 * server listening on a free loopback port. Run as an unprivileged user when the tests run as root (PostgreSQL
 * refuses root): `postgres` (created by the Debian package) or else `nobody`. Also a deterministic CSV table
 * generator for COPY tests.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { createCipheriv, createHash } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventually } from './eventually.ts'
import { freePort } from './servers.ts'

const ROOT = '/usr/lib/postgresql'
const TOOLS = ['initdb', 'postgres', 'psql']

/** The newest installed version's bin dir holding initdb, postgres and psql, or why there is none. */
export function findPostgres(): { bin: string } | { missing: string } {
  const versions = existsSync(ROOT)
    ? readdirSync(ROOT)
        .filter((v) => /^\d+$/.test(v))
        .sort((x, y) => Number(y) - Number(x))
    : []
  for (const v of versions) {
    const bin = join(ROOT, v, 'bin')
    if (TOOLS.every((t) => existsSync(join(bin, t)))) return { bin }
  }
  return {
    missing: `needs ${TOOLS.join(', ')} in ${ROOT}/<version>/bin (apt-get install postgresql postgresql-client)`,
  }
}

/** Whom the server runs as: nobody to change when not root, else `postgres` or `nobody`. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  for (const name of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' })
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' })
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout), gid: Number(gid.stdout) }
  }
  throw new Error('running as root and neither the user postgres nor nobody exists to run PostgreSQL as')
}

export interface PgCluster {
  port: number
  /** The server's bin dir (for psql). */
  bin: string
  /** The server's log so far. */
  log(): string
  /** Immediate shutdown, then the temp dir is removed. Safe to call more than once. */
  stop(): Promise<void>
}

/** initdb + postgres in a new temp dir; resolves when the server accepts connections. */
export async function startCluster(bin: string): Promise<PgCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'wpg-'))
  const user = serverUser()
  const as = user ?? {}
  let server: ChildProcess | undefined
  let log = ''
  let exited: Promise<void> = Promise.resolve()
  const cluster: PgCluster = {
    port: 0,
    bin,
    log: () => log,
    async stop() {
      if (server !== undefined && server.exitCode === null && server.signalCode === null) {
        server.kill('SIGQUIT') // immediate shutdown: the data is thrown away next
        const killer = setTimeout(() => server?.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(killer)
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
  try {
    if (user !== undefined) await chown(dir, user.uid, user.gid)
    const env = { PATH: process.env.PATH, HOME: dir, LC_ALL: 'C', TZ: 'UTC' }
    const data = join(dir, 'data')
    const init = spawnSync(
      join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { ...as, env, cwd: dir, encoding: 'utf8' },
    )
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}):\n${init.stdout}${init.stderr}`)
    // trust on the cluster's own socket and 127.0.0.1 only (initdb's -A trust would also allow ::1)
    const hba = join(data, 'pg_hba.conf')
    await writeFile(hba, 'local all all trust\nhost all all 127.0.0.1/32 trust\n')
    if (user !== undefined) await chown(hba, user.uid, user.gid)
    cluster.port = await freePort()
    const settings = {
      listen_addresses: '127.0.0.1',
      port: String(cluster.port),
      unix_socket_directories: dir,
      // throwaway data: no durability, no checkpoints in the middle of a load
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_wal_size: '4GB',
      work_mem: '256MB',
      // a seq scan always starts at block 0, so COPY OUT of a freshly loaded table gives the rows in load order
      synchronize_seqscans: 'off',
      ssl: 'off',
    }
    const args = ['-D', data, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])]
    const child = spawn(join(bin, 'postgres'), args, { ...as, env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    server = child
    exited = new Promise((r) => child.once('exit', () => r()))
    const take = (d: Buffer): void => {
      log += d.toString('utf8')
    }
    child.stdout!.on('data', take)
    child.stderr!.on('data', take)
    const gone = (): boolean => child.exitCode !== null || child.signalCode !== null
    await eventually(() => gone() || /ready to accept connections/.test(log), {
      timeoutMs: 30_000,
      message: 'postgres ready',
    }).catch(() => {
      throw new Error(`postgres did not start in 30 s:\n${log}`)
    })
    if (gone()) throw new Error(`postgres exited:\n${log}`)
    return cluster
  } catch (err) {
    await cluster.stop()
    throw err
  }
}

/**
 * A table of `rows` CSV lines `id,label,hash` (id 1..rows, a label of plain words, 32 hex digits of an AES-CTR key
 * stream), generated chunk by chunk. `sha256` is the hash of all the bytes; `md5` is the MD5 of the lines joined by
 * `\n` without the last one — what `md5(string_agg(id || ',' || label || ',' || hash, E'\n' order by id))` gives.
 * Both are set once `next()` has returned null.
 */
export class CsvTable {
  readonly rows: number
  bytes = 0
  sha256 = ''
  md5 = ''
  #id = 0
  readonly #cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16))
  readonly #sha = createHash('sha256')
  readonly #md5 = createHash('md5')
  constructor(rows: number) {
    this.rows = rows
  }
  /** The next chunk of whole lines, or null at the end. */
  next(maxRows = 8192): Buffer | null {
    if (this.#id >= this.rows) {
      if (this.sha256 === '') {
        this.sha256 = this.#sha.digest('hex')
        this.md5 = this.#md5.digest('hex')
      }
      return null
    }
    const n = Math.min(maxRows, this.rows - this.#id)
    const hex = this.#cipher.update(Buffer.alloc(16 * n)).toString('hex')
    let text = ''
    for (let i = 0; i < n; i++) {
      const id = ++this.#id
      const h = hex.slice(32 * i, 32 * i + 32)
      text += `${id},${WORDS[id % 7]} ${WORDS[(id >> 3) % 7]} row ${id},${h}\n`
    }
    const chunk = Buffer.from(text, 'utf8')
    this.bytes += chunk.length
    this.#sha.update(chunk)
    if (this.#id > n) this.#md5.update('\n') // the line break dropped at the end of the previous chunk
    this.#md5.update(chunk.subarray(0, chunk.length - 1))
    return chunk
  }
}

const WORDS = ['alder', 'birch', 'cedar', 'hazel', 'larch', 'maple', 'rowan']
