/**
 * The daemon's log file (src/daemon/log-file.ts): rotation keeps `daemon.log` and `daemon.log.1` under twice the
 * limit; a rotation that fails half-way (the directory removed under the daemon) drops lines but never writes to, or
 * closes, a descriptor number the process has handed out again since, and the log resumes once it can be opened.
 */
import assert from 'node:assert/strict'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { openLogFile } from '../../src/daemon/log-file.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'warren-log-'))
  dirs.push(d)
  return d
}

const line = (i: number): string => `line ${String(i).padStart(6, '0')} ${'x'.repeat(80)}\n`

describe('the daemon log file', () => {
  it('rotates into daemon.log.1 and keeps both under twice the limit, every line in one of them', async () => {
    const dir = await tempDir()
    const path = join(dir, 'daemon.log')
    const log = openLogFile(path, 4096)
    for (let i = 0; i < 200; i++) log.write(line(i))
    log.close()
    assert.ok(statSync(path).size <= 4096)
    assert.ok(statSync(`${path}.1`).size <= 4096)
    const kept = readFileSync(`${path}.1`, 'utf8') + readFileSync(path, 'utf8')
    const first = Number(/^line (\d+)/.exec(kept)![1])
    const expected = Array.from({ length: 200 - first }, (_, i) => line(first + i)).join('')
    assert.equal(kept, expected, 'the newest lines, in order, none lost between the two files')
    assert.equal(statSync(path).mode & 0o777, 0o600)
  })

  it('a failed rotation never touches a descriptor that is no longer its own, and the log resumes', async () => {
    const dir = await tempDir()
    const logDir = join(dir, 'home')
    mkdirSync(logDir)
    const path = join(logDir, 'daemon.log')
    const log = openLogFile(path, 1024)
    log.write(line(0))
    await rm(logDir, { recursive: true }) // the home removed under the running daemon
    const stderr = process.stderr.write
    const complaints: string[] = []
    process.stderr.write = ((s: string) => complaints.push(String(s)) > 0) as typeof process.stderr.write
    let other: number | undefined
    try {
      for (let i = 1; i < 40; i++) {
        log.write(line(i)) // the rotation closes the file, then cannot rename or reopen it
        // the lowest free number: the one the log file had, once it is closed
        other ??= openSync(join(dir, 'other'), 'a')
      }
      assert.equal(statSync(join(dir, 'other')).size, 0, 'nothing written to the descriptor handed out again')
      assert.doesNotThrow(() => statSync(join(dir, 'other')))
      closeSync(other!) // still open: the log did not close it
      other = undefined
      mkdirSync(logDir)
      log.write(line(99))
    } finally {
      process.stderr.write = stderr
      if (other !== undefined) closeSync(other)
      log.close()
    }
    assert.equal(complaints.length, 1, complaints.join(''))
    assert.match(
      complaints[0]!,
      /^warren: cannot write the log file .*daemon\.log: ENOENT: no such file or directory, /,
    )
    assert.equal(readFileSync(path, 'utf8'), line(99), 'the log resumes where it can be opened again')
    assert.ok(!existsSync(`${path}.1`))
  })
})
