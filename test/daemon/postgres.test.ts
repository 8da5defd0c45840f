/**
 * A real PostgreSQL server behind the service `db` on daemon a, reached by the real `psql` through
 * `warren forward a/db` on daemon b: COPY IN of a 110 MiB CSV (1.8 M rows), and COPY OUT of the same table (loaded
 * over a direct connection) at full speed and with psql's output read at 20 MiB/s. Every byte is checked: row count
 * and MD5 of the rows inside the server over a direct connection, SHA-256 of COPY OUT against the CSV loaded and
 * against the same COPY OUT made directly; psql must exit 0. Needs Debian's postgresql and postgresql-client
 * (installed by .ci/run); skipped without them.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { runCli } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { CsvTable, findPostgres, type PgCluster, startCluster } from '../support/postgres.ts'
import { freePort } from '../support/servers.ts'
import { MiB, pace, type ReadPace, type ReadResult, readPaced } from '../support/transfer.ts'

const ROWS = 1_800_000
const PSQL_LIMIT_MS = 90_000
const found = findPostgres()
const skip = 'missing' in found ? found.missing : false

let cluster: PgCluster | undefined
let pair: DaemonPair | undefined
let forwardPort = 0
/** The CSV loaded into `t` over a direct connection, and how long that took (the baseline). */
let loaded: { rows: CsvTable; ms: number } | undefined

before(async () => {
  if ('missing' in found) return
  cluster = await startCluster(found.bin)
  pair = await startDaemonPair({ db: `/tcp/${cluster.port}` })
  forwardPort = await freePort()
  const fwd = await runCli(['forward', 'a/db', '--listen', `127.0.0.1:${forwardPort}`], { home: pair.bHome.dir })
  assert.equal(fwd.code, 0, fwd.stderr)
  loaded = await copyIn(cluster.port, 't')
})

after(async () => {
  try {
    await pair?.close()
  } finally {
    await cluster?.stop()
  }
})

interface PsqlRun {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
  /** The first 4 KiB of stdout as text. */
  text: string
  /** All of stdout, read at the pace asked for. */
  out: ReadResult
  ms: number
  /** The error writing stdin met, if any. */
  inputError?: string
}

/** Runs psql against 127.0.0.1:`port`; `input` is streamed to its stdin (with back-pressure), stdout read at `p`. */
function psql(port: number, args: string[], input?: CsvTable, p: ReadPace = pace.fast): Promise<PsqlRun> {
  const started = Date.now()
  const child = spawn(
    join(cluster!.bin, 'psql'),
    ['-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', ...args],
    { env: { ...process.env, PGCONNECT_TIMEOUT: '10' }, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stderr = ''
  let text = ''
  let inputError: string | undefined
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString('utf8')
  })
  child.stdout!.on('data', (d: Buffer) => {
    if (text.length < 4096) text += d.toString('utf8')
  })
  const out = readPaced(child.stdout!, p)
  const stdin = child.stdin!
  stdin.on('error', (err) => {
    inputError = err.message
  })
  const feed = (): void => {
    for (let c = input?.next() ?? null; c !== null; c = input!.next()) {
      if (!stdin.write(c)) {
        stdin.once('drain', feed)
        return
      }
    }
    stdin.end()
  }
  feed()
  const timer = setTimeout(() => child.kill('SIGKILL'), PSQL_LIMIT_MS)
  return new Promise((resolve) =>
    child.on('close', async (code, signal) => {
      clearTimeout(timer)
      const run = { code, signal, stderr, text, out: await out, ms: Date.now() - started }
      resolve(inputError === undefined ? run : { ...run, inputError })
    }),
  )
}

/** What to show when an assertion fails: psql's stderr and the tails of the daemons' and the server's logs. */
function context(r: PsqlRun): string {
  return [
    `psql exit ${r.code} signal ${r.signal} after ${r.ms} ms, stdin error: ${r.inputError ?? 'none'}`,
    `psql stderr:\n${r.stderr}`,
    `--- daemon b:\n${pair!.b.stderr.slice(-2000)}`,
    `--- daemon a:\n${pair!.a.stderr.slice(-2000)}`,
    `--- postgres:\n${cluster!.log().slice(-2000)}`,
  ].join('\n')
}

/** Runs one SQL command over a direct connection and returns its unaligned output. */
async function sql(command: string): Promise<string> {
  const r = await psql(cluster!.port, ['-At', '-c', command])
  assert.equal(r.code, 0, context(r))
  return r.text
}

/** COPY IN of a fresh table's rows into `table` through `port`; checks psql's report and the rows in the server. */
async function copyIn(port: number, table: string): Promise<{ rows: CsvTable; ms: number }> {
  await sql(`create table ${table} (id integer, label text, hash text)`)
  const rows = new CsvTable(ROWS)
  const r = await psql(port, ['-c', `\\copy ${table} from stdin with csv`], rows)
  assert.equal(r.code, 0, context(r))
  assert.equal(r.inputError, undefined, context(r))
  assert.equal(r.text, `COPY ${ROWS}\n`, context(r))
  assert.equal(r.out.ending, 'end')
  assert.ok(rows.bytes >= 100 * MiB, `only ${rows.bytes} bytes of CSV`)
  const inServer = await sql(
    `select count(*), md5(string_agg(id || ',' || label || ',' || hash, E'\\n' order by id)) from ${table}`,
  )
  assert.equal(inServer, `${ROWS}|${rows.md5}\n`, 'rows in the server differ from the CSV sent')
  return { rows, ms: r.ms }
}

/** COPY OUT of `t` through `port`, stdout read at `p`; checks the exit and returns what came out. */
async function copyOut(port: number, p: ReadPace = pace.fast): Promise<PsqlRun> {
  const r = await psql(port, ['-c', '\\copy t to stdout with csv'], undefined, p)
  assert.equal(r.code, 0, context(r))
  assert.equal(r.out.ending, 'end', context(r))
  return r
}

const mibps = (bytes: number, ms: number): string => `${(bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`

test(`psql \\copy of ${ROWS} rows (110 MiB of CSV) into PostgreSQL through \`warren forward\` loads every row`, {
  skip,
  timeout: 180_000,
}, async () => {
  const fwd = await copyIn(forwardPort, 't_forward')
  await sql('drop table t_forward')
  const direct = loaded!
  console.log(
    `# COPY IN ${(fwd.rows.bytes / MiB).toFixed(1)} MiB, ${ROWS} rows: through the forward ${fwd.ms} ms ` +
      `(${mibps(fwd.rows.bytes, fwd.ms)}), direct ${direct.ms} ms (${mibps(direct.rows.bytes, direct.ms)})`,
  )
})

test('psql \\copy out of a 110 MiB table through the forward is byte-identical to the CSV loaded and to a direct COPY OUT', {
  skip,
  timeout: 180_000,
}, async () => {
  const { rows } = loaded!
  const fwd = await copyOut(forwardPort)
  const direct = await copyOut(cluster!.port)
  assert.equal(direct.out.bytes, rows.bytes)
  assert.equal(direct.out.sha256, rows.sha256, 'a direct COPY OUT differs from the CSV loaded')
  assert.equal(fwd.out.bytes, rows.bytes, context(fwd))
  assert.equal(fwd.out.sha256, direct.out.sha256, 'COPY OUT through the forward differs from the direct one')
  console.log(
    `# COPY OUT ${(fwd.out.bytes / MiB).toFixed(1)} MiB: through the forward ${fwd.ms} ms ` +
      `(${mibps(fwd.out.bytes, fwd.ms)}), direct ${direct.ms} ms (${mibps(direct.out.bytes, direct.ms)})`,
  )
})

test('psql \\copy out through the forward with its stdout read at 20 MiB/s arrives whole and byte-identical', {
  skip,
  timeout: 180_000,
}, async () => {
  const { rows } = loaded!
  const slow = await copyOut(forwardPort, pace.mibps(20))
  assert.equal(slow.out.bytes, rows.bytes, context(slow))
  assert.equal(slow.out.sha256, rows.sha256, 'COPY OUT read at 20 MiB/s differs from the CSV loaded')
  console.log(`# COPY OUT through the forward read at 20 MiB/s: ${slow.ms} ms (${mibps(slow.out.bytes, slow.ms)})`)
})
