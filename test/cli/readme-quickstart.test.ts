/**
 * The README's quickstart, run as a user runs it: its shell block word for word (only `/tmp/` moved to a fresh
 * directory), in bash with `set -euo pipefail`, from the checkout, inside a network namespace of its own so that
 * its fixed ports (8080, 4780/4781, 4790/4791, 9090) meet nothing else on the machine. Every step must succeed and
 * print what the README says it does, and the last lines must leave no process behind.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { labSupport } from '../../src/testing/natlab/index.ts'
import { eventually } from '../support/eventually.ts'

const support = await labSupport()
const skip = support.ok ? false : `network namespaces unavailable: ${support.reason}`

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 30_000): Promise<Run> {
  return new Promise((res) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env }, (err, stdout, stderr) =>
      res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }),
    )
  })
}

/** The first `sh` code block under the README's "Quickstart" heading. */
function quickstartBlock(readme: string): string {
  const section = readme.slice(readme.indexOf('\n## Quickstart'))
  const m = /\n```sh\n([\s\S]*?)\n```\n/.exec(section)
  if (m === null) throw new Error('README.md has no sh block under "## Quickstart"')
  return `${m[1]}\n`
}

async function pidsIn(ns: string): Promise<string[]> {
  const r = await run('ip', ['netns', 'pids', ns])
  return r.stdout.split('\n').filter((l) => l.trim() !== '')
}

describe('the README quickstart', { skip }, () => {
  it('runs from start to end: the page through a forward and `warren connect`, status, ping, ls, call', async () => {
    const script = quickstartBlock(await readFile('README.md', 'utf8'))
    assert.match(script, /\/tmp\/a/, 'the quickstart keeps its homes in /tmp')
    const dir = await mkdtemp(join(tmpdir(), 'warren-quickstart-'))
    const ns = `wqs-${process.pid}-${randomBytes(3).toString('hex')}`
    const file = join(dir, 'quickstart.sh')
    await writeFile(file, script.replaceAll('/tmp/', `${dir}/`))
    try {
      assert.equal((await run('ip', ['netns', 'add', ns])).code, 0)
      assert.equal((await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])).code, 0)
      // as under `npm test`: the pinned Node first, so `npx warren` runs the checkout's own bin on it
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        PATH: `${resolve('node_modules/.bin')}${delimiter}${process.env.PATH ?? ''}`,
      }
      delete env.WARREN_HOME
      const r = await run('ip', ['netns', 'exec', ns, 'bash', '-euo', 'pipefail', file], env, 180_000)
      const all = `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
      assert.equal(r.code, 0, all)

      assert.equal(r.stdout.match(/^hello from node a$/gm)?.length, 2, `curl and warren connect: ${all}`)
      assert.match(r.stdout, /^HTTP\/1\.0 200 OK\r?$/m, all)
      assert.match(r.stdout, /^exposed web → \/tcp\/8080 \(allowed: 12D3KooW\w+\)$/m, all)
      assert.match(r.stderr, /^forwarding 127\.0\.0\.1:9090 → warren\w+\/web /m, all)
      assert.match(r.stdout, /^ {2}127\.0\.0\.1:9090 {2}→ warren\w+\/web {2}0 open, 1 served, 0 failed$/m, all)
      assert.match(r.stdout, /^12D3KooW\w+: [\d.]+ ms via direct \/ip4\/127\.0\.0\.1\/tcp\/4781\//m, all)
      assert.match(r.stdout, /^web +tcp/m, `warren ls lists web: ${all}`)
      assert.match(r.stdout, /"methods": \[\n\s+"_info",/, `warren call _info: ${all}`)
      assert.equal(r.stdout.match(/^stopped the daemon \(pid \d+\)$/gm)?.length, 2, all)
      // `warren down` twice and `kill %1`: nothing of the quickstart runs on
      await eventually(async () => (await pidsIn(ns)).length === 0, {
        timeoutMs: 10_000,
        message: 'processes left in the namespace after the quickstart',
      })
    } finally {
      for (const pid of await pidsIn(ns)) await run('kill', ['-9', pid])
      await run('ip', ['netns', 'del', ns])
      await rm(dir, { recursive: true, force: true })
    }
  })
})
