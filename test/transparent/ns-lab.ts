/**
 * One network namespace per test file for transparent mode: only `lo` inside, a resolv.conf for it (ip-netns
 * bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf for processes it runs) naming Warren's DNS server on
 * 127.0.0.1:53, and helpers to run the real CLI, clients and servers in it. The host's network is never touched;
 * teardown kills what was started and deletes the namespace and its /etc/netns directory by exact name.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, rm, rmdir, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { HomePaths } from '../../src/config/home.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { labSupport } from '../../src/testing/natlab/index.ts'
import { MAIN, NODE } from '../support/cli.ts'
import { makeHome, removeHome, testConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'

const support = await labSupport()
const nft = await new Promise<boolean>((r) => execFile('nft', ['--version'], (err) => r(err === null)))
export const nsSkip: false | string = !support.ok
  ? `network namespaces unavailable: ${support.reason}`
  : nft
    ? false
    : 'nft (Debian package nftables) is not installed'

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

export class NsLab {
  readonly name: string
  /** Running children and how each is asked to stop (SIGTERM, or closing stdin for the fixture scripts). */
  readonly #children = new Map<ChildProcess, 'signal' | 'stdin'>()
  readonly #homes: HomePaths[] = []

  private constructor(name: string) {
    this.name = name
  }

  static async create(): Promise<NsLab> {
    const lab = new NsLab(`wtp-${process.pid}-${randomBytes(3).toString('hex')}`)
    await lab.exec('ip', ['netns', 'add', lab.name], false)
    await lab.exec('ip', ['-n', lab.name, 'link', 'set', 'lo', 'up'], false)
    await mkdir(`/etc/netns/${lab.name}`, { recursive: true })
    await writeFile(`/etc/netns/${lab.name}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n')
    return lab
  }

  /** Runs a command (inside the namespace unless `inside` is false) to its end; never rejects. */
  exec(
    cmd: string,
    args: string[],
    inside = true,
    opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
  ): Promise<Run> {
    const argv = inside ? ['netns', 'exec', this.name, cmd, ...args] : args
    return new Promise((res) => {
      execFile(
        inside ? 'ip' : cmd,
        argv,
        {
          encoding: 'utf8',
          timeout: opts.timeoutMs ?? 60_000,
          maxBuffer: 64 * 1024 * 1024,
          env: { ...process.env, ...opts.env },
        },
        (err, stdout, stderr) =>
          res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }),
      )
    })
  }

  /**
   * Starts a long-running process inside the namespace; at {@link close} it gets SIGTERM, or (`stop: 'stdin'`,
   * the fixture scripts, which then stop what they started) its stdin closed; SIGKILL after 15 s.
   */
  spawn(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, stop: 'signal' | 'stdin' = 'signal'): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    child.stdin!.on('error', () => {})
    this.#children.set(child, stop)
    child.on('exit', () => this.#children.delete(child))
    return child
  }

  /** A home with `extra` config (loopback listen, access port on port 0), removed at {@link close}. */
  async home(extra: Partial<ConfigInput> = {}): Promise<HomePaths> {
    const home = await makeHome(testConfig(extra))
    this.#homes.push(home)
    return home
  }

  /** `warren up` in the namespace. */
  daemon(home: HomePaths, args: string[] = [], env: NodeJS.ProcessEnv = {}): NsDaemon {
    const child = this.spawn(NODE, [MAIN, 'up', ...args], { WARREN_HOME: home.dir, ...env })
    child.stdin!.end()
    return new NsDaemon(home, child)
  }

  /** The servers of ns-servers.ts, started in the namespace. */
  async servers(): Promise<{ echo: number; hash: number; http: number }> {
    const child = this.spawn(NODE, [resolve('test/transparent/ns-servers.ts')], {}, 'stdin')
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString('utf8')
    })
    await eventually(() => out.includes('\n'), { timeoutMs: 15_000, message: 'ns-servers did not start' })
    return JSON.parse(out.trim()) as { echo: number; hash: number; http: number }
  }

  /** What Warren left in the namespace: its nft table, its interface, routes in the ranges. */
  async leftovers(iface = 'warren0'): Promise<string[]> {
    const out: string[] = []
    const tables = await this.exec('nft', ['list', 'tables'])
    if (tables.stdout.includes('inet warren')) out.push('nft table inet warren')
    const link = await this.exec('ip', ['link', 'show', 'dev', iface])
    if (link.code === 0) out.push(`interface ${iface}`)
    for (const f of ['-4', '-6']) {
      const routes = await this.exec('ip', [f, 'route', 'show', 'table', 'all'])
      for (const line of routes.stdout.split('\n'))
        if (/^(100\.|fd77:|local 100\.|local fd77:)/.test(line)) out.push(line)
    }
    return out
  }

  async close(): Promise<void> {
    for (const [c, stop] of this.#children) {
      if (stop === 'stdin') c.stdin!.end()
      else c.kill('SIGTERM')
    }
    await eventually(() => this.#children.size === 0, { timeoutMs: 15_000 }).catch(() => undefined)
    for (const c of this.#children.keys()) c.kill('SIGKILL')
    await eventually(() => this.#children.size === 0, { timeoutMs: 5_000 }).catch(() => undefined)
    await this.exec('ip', ['netns', 'del', this.name], false)
    await rm(`/etc/netns/${this.name}`, { recursive: true, force: true })
    await rmdir('/etc/netns').catch(() => undefined) // only when empty: other namespaces may have theirs
    for (const h of this.#homes) await removeHome(h)
  }
}

export class NsDaemon {
  readonly home: HomePaths
  readonly child: ChildProcess
  stderr = ''
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(home: HomePaths, child: ChildProcess) {
    this.home = home
    this.child = child
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString('utf8')
    })
    child.stdout!.resume()
    this.exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })))
  }

  /** Waits for the `ready` line; rejects with the log when the daemon exits first. */
  async ready(timeoutMs = 30_000): Promise<this> {
    let exited = false
    void this.exited.then(() => {
      exited = true
    })
    await eventually(() => exited || / info {2}ready$/m.test(this.stderr), { timeoutMs }).catch(() => undefined)
    if (!/ info {2}ready$/m.test(this.stderr)) throw new Error(`daemon not ready:\n${this.stderr}`)
    return this
  }

  /** SIGTERM (or `signal`) and the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    // the child is `ip netns exec`, which execs node: the signal reaches the daemon itself
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    return this.exited
  }
}
