/**
 * Real daemons for tests: a temp Warren home (key + config listening on 127.0.0.1 port 0, access port on
 * port 0), `warren up` as a child process, wait for `ready`, stop with a signal, clean up.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { WarrenClient } from '../../src/client/client.ts'
import { type HomePaths, resolveHome } from '../../src/config/home.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { generateNodeKey, saveNodeKey } from '../../src/identity/keys.ts'
import type { NodeIdentity } from '../../src/node/types.ts'
import { spawnCli } from './cli.ts'
import { eventually } from './eventually.ts'

/** Config for a test home: loopback, ephemeral ports, plus `extra`. */
export function testConfig(extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    listen: ['/ip4/127.0.0.1/tcp/0'],
    peers: {},
    services: {},
    proxy: { listen: '127.0.0.1:0' },
    traversal: { udpListen: ['/ip4/127.0.0.1/udp/0'] }, // tests talk to loopback only
    ...extra,
  }
}

/** A fresh home in the temp dir with a key and a config (short path: Unix socket paths are limited). */
export async function makeHome(config: ConfigInput = testConfig()): Promise<HomePaths> {
  const dir = await mkdtemp(join(tmpdir(), 'wh-'))
  const home = resolveHome(dir)
  await saveNodeKey(home.key, await generateNodeKey())
  await writeConfig(home, config)
  return home
}

export async function writeConfig(home: HomePaths, config: unknown): Promise<void> {
  await writeFile(home.config, `${JSON.stringify(config, null, 2)}\n`)
}

export interface DaemonExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export class TestDaemon {
  readonly home: HomePaths
  readonly child: ChildProcess
  /** Everything it logged so far. */
  stderr = ''
  stdout = ''
  readonly exited: Promise<DaemonExit>
  #identity: NodeIdentity | undefined

  private constructor(home: HomePaths, child: ChildProcess) {
    this.home = home
    this.child = child
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString('utf8')
    })
    child.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString('utf8')
    })
    this.exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })))
  }

  /** Runs `warren up` on `home` and waits for its `ready` line (rejects with its log if it exits first). */
  static async start(home: HomePaths, args: string[] = [], timeoutMs = 20_000, prefix?: string[]): Promise<TestDaemon> {
    const d = TestDaemon.spawn(home, args, prefix)
    await d.waitForLog(/ info {2}ready$/m, timeoutMs)
    return d
  }

  /** Spawns `warren up` without waiting; `prefix` runs it under a command (`prlimit --nofile=…`). */
  static spawn(home: HomePaths, args: string[] = [], prefix?: string[]): TestDaemon {
    const child = spawnCli(['up', ...args], { home: home.dir, ...(prefix === undefined ? {} : { prefix }) })
    child.stdin!.end()
    return new TestDaemon(home, child)
  }

  /** Waits until the log matches `pattern`. */
  async waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    let exited = false
    void this.exited.then(() => {
      exited = true
    })
    await eventually(() => exited || pattern.test(this.stderr), { timeoutMs }).catch(() => {
      throw new Error(`daemon did not log ${pattern} within ${timeoutMs} ms:\n${this.stderr}`)
    })
    if (!pattern.test(this.stderr)) throw new Error(`daemon exited before logging ${pattern}:\n${this.stderr}`)
  }

  async client(): Promise<WarrenClient> {
    return WarrenClient.connect({ home: this.home })
  }

  /** The running daemon's identity (live addresses and ticket). */
  async identity(): Promise<NodeIdentity> {
    if (this.#identity === undefined) {
      const c = await this.client()
      try {
        this.#identity = await c.id()
      } finally {
        c.close()
      }
    }
    return this.#identity
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `timeoutMs`). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<DaemonExit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    const exit = await this.exited
    clearTimeout(timer)
    return exit
  }
}

/** Removes a test home. */
export async function removeHome(home: HomePaths): Promise<void> {
  await rm(home.dir, { recursive: true, force: true })
}
