/**
 * The `warren` launcher (bin/warren.js) starts a daemon with its memory and compiler settings: `warren up` (and
 * `--home <dir> up`) replaces itself once with a Node started with `--max-semi-space-size=2`,
 * `--heap-growing-percent=200`, `--invocation-count-for-turbofan=1000` and MALLOC_ARENA_MAX=2 (same pid), runs from
 * the bundled daemon (dist/daemon.cjs, built when missing), answers `warren status` and stops cleanly on SIGTERM; a
 * user's own `--max-semi-space-size` in NODE_OPTIONS is kept as it is. Under a soft open-file limit below the hard
 * one the daemon runs at the hard one, and warns when `limits.maxStreams` cannot be held under it.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, it } from 'node:test'
import { NODE, WARREN_BIN } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'

const linux = process.platform === 'linux'

const homes: string[] = []
after(async () => {
  for (const h of homes) await rm(h, { recursive: true, force: true })
})

function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, WARREN_LOG: 'info', ...extra }
  for (const k of ['WARREN_HOME', 'WARREN_NODE_TUNED', 'MALLOC_ARENA_MAX', 'NODE_OPTIONS', 'WARREN_BUNDLE']) {
    if (!(k in extra)) delete e[k]
  }
  return e
}

function run(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(NODE, [WARREN_BIN, ...args], { env: env(extra), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  return new Promise((r) => child.on('close', (code) => r({ code, stdout })))
}

async function newHome(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'warren-launcher-'))
  homes.push(home)
  const init = await run(['--home', home, 'init', '--listen', '/ip4/127.0.0.1/tcp/0'])
  assert.equal(init.code, 0)
  return home
}

/** Starts `warren --home <home> up`, waits for "ready" on stderr. */
async function up(
  home: string,
  extra: NodeJS.ProcessEnv = {},
  prefix: string[] = [],
): Promise<{ child: ChildProcess; stderr: () => string }> {
  const [cmd, ...args] = [...prefix, NODE, WARREN_BIN, '--home', home, 'up']
  const child = spawn(cmd!, args, { env: env(extra), stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  await eventually(() => /\bready\b/.test(stderr) || undefined, { timeoutMs: 60_000, message: 'daemon ready' })
  return { child, stderr: () => stderr }
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  child.kill('SIGTERM')
  return exited
}

const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
const environ = (pid: number): string[] => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')

describe('bin/warren.js: the daemon’s start', { skip: linux ? false : 'the re-exec is Linux only' }, () => {
  it('`warren up` runs with the memory settings, from the bundle, answers status, stops with status 0', async () => {
    const home = await newHome()
    const { child } = await up(home)
    const pid = child.pid as number
    assert.ok(cmdline(pid).includes('--max-semi-space-size=2'), cmdline(pid).join(' '))
    assert.ok(cmdline(pid).includes('--heap-growing-percent=200'), cmdline(pid).join(' '))
    assert.ok(cmdline(pid).includes('--invocation-count-for-turbofan=1000'), cmdline(pid).join(' '))
    assert.ok(environ(pid).includes('MALLOC_ARENA_MAX=2'))
    assert.ok(environ(pid).includes('WARREN_NODE_TUNED=1'))
    assert.ok(existsSync(resolve('dist/daemon.cjs')), 'the bundle was built')
    const status = await run(['--home', home, 'status', '--json'])
    assert.equal(status.code, 0)
    assert.match((JSON.parse(status.stdout) as { id: string }).id, /^12D3KooW/)
    assert.equal(await stop(child), 0)
  })

  it('a --max-semi-space-size of the user’s own (NODE_OPTIONS) is kept; WARREN_BUNDLE=0 runs the sources', async () => {
    const home = await newHome()
    const { child } = await up(home, { NODE_OPTIONS: '--max-semi-space-size=8', WARREN_BUNDLE: '0' })
    const pid = child.pid as number
    assert.ok(!cmdline(pid).includes('--max-semi-space-size=2'), cmdline(pid).join(' '))
    assert.ok(!environ(pid).includes('WARREN_NODE_TUNED=1'))
    assert.equal(await stop(child), 0)
  })

  it('runs at its hard open-file limit, and warns when limits.maxStreams cannot fit under it', async () => {
    const home = await newHome()
    // prlimit execs the command (same pid); Node raises its soft limit to the hard one as it starts
    const { child, stderr } = await up(home, {}, ['prlimit', '--nofile=1024:4096'])
    const pid = child.pid as number
    const limits = /^Max open files\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))
    assert.deepEqual(limits?.slice(1), ['4096', '4096'])
    assert.ok(cmdline(pid).includes('--max-semi-space-size=2'), cmdline(pid).join(' '))
    assert.match(
      stderr(),
      / warn {2}limits\.maxStreams is 4096 but this process may open only 4096 files \(ulimit -n\): local connections past about 3968 will be refused; raise the limit to at least 4224 \(ulimit -n, or LimitNOFILE= in a systemd unit\)\n/,
    )
    assert.equal(await stop(child), 0)
  })

  it('`warren up --help` goes through the re-exec and the bundle and prints its help', async () => {
    const r = await run(['up', '--help'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /--detach/)
  })
})
