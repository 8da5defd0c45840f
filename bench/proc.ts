/** Child processes for the benchmark: started with the pinned Node, talked to by JSON lines, always stopped. */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createInterface, type Interface } from 'node:readline'
import { promisify } from 'node:util'

const run = promisify(execFile)
const TICKS_PER_SECOND = 100

export class Child {
  readonly name: string
  readonly proc: ChildProcess
  readonly #lines: Interface
  readonly #queue: string[] = []
  readonly #waiters: ((line: string | undefined) => void)[] = []
  #stderr = ''
  #exited = false

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.name = name
    this.proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    this.#lines = createInterface({ input: this.proc.stdout! })
    this.#lines.on('line', (line) => {
      const w = this.#waiters.shift()
      if (w !== undefined) w(line)
      else this.#queue.push(line)
    })
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-20_000)
    })
    this.proc.once('exit', () => {
      this.#exited = true
      for (const w of this.#waiters.splice(0)) w(undefined)
    })
  }

  get stderr(): string {
    return this.#stderr
  }

  /** The next stdout line parsed as JSON; fails on time-out, exit, or an `{"error"}` answer. */
  async next<T = Record<string, unknown>>(timeoutMs: number): Promise<T> {
    const line =
      this.#queue.shift() ??
      (this.#exited
        ? undefined
        : await new Promise<string | undefined>((resolve, reject) => {
            const timer = setTimeout(() => {
              this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
              reject(new Error(`${this.name}: no answer within ${timeoutMs} ms\n${this.#stderr}`))
            }, timeoutMs)
            const waiter = (l: string | undefined): void => {
              clearTimeout(timer)
              resolve(l)
            }
            this.#waiters.push(waiter)
          }))
    if (line === undefined) throw new Error(`${this.name} exited (${this.proc.exitCode})\n${this.#stderr}`)
    const value = JSON.parse(line) as T & { error?: string }
    if (typeof value === 'object' && value !== null && 'error' in value) throw new Error(`${this.name}: ${value.error}`)
    return value
  }

  /** Sends one command line and waits for its JSON answer. */
  request<T = Record<string, unknown>>(line: string, timeoutMs: number): Promise<T> {
    this.proc.stdin!.write(`${line}\n`)
    return this.next<T>(timeoutMs)
  }

  /** Resolves once stderr contains `pattern` (e.g. a daemon's "ready" log line). */
  async waitForStderr(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pattern.test(this.#stderr)) {
      if (this.#exited) throw new Error(`${this.name} exited (${this.proc.exitCode}) before ready:\n${this.#stderr}`)
      if (Date.now() > deadline) throw new Error(`${this.name}: not ready within ${timeoutMs} ms:\n${this.#stderr}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  /** CPU seconds (user + system) the process has used so far, from /proc. */
  cpuSeconds(): number {
    try {
      const stat = readFileSync(`/proc/${this.proc.pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
    } catch {
      return Number.NaN
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.#exited) return
    const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()))
    this.proc.kill('SIGTERM')
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs)
    await gone
    clearTimeout(timer)
  }
}

/** Runs a short-lived command with the pinned Node and returns its stdout. */
export async function node(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, args, { env: { ...process.env, ...env }, timeout: timeoutMs })
    return stdout
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}`)
  }
}

/**
 * The child side of {@link Child}: prints `{"ready": true}`, then answers each stdin line `<command> <number>` with the
 * command's JSON result, or `{"error": …}`, until stdin ends. SIGTERM exits cleanly, so `--cpu-prof` writes its profile.
 */
export async function answerCommands(commands: Record<string, (arg: number) => Promise<unknown>>): Promise<void> {
  process.on('SIGTERM', () => process.exit(0))
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
  for await (const line of createInterface({ input: process.stdin })) {
    const [name, arg] = line.trim().split(/\s+/)
    try {
      const fn = commands[name ?? '']
      if (fn === undefined) throw new Error(`unknown command ${name}`)
      process.stdout.write(`${JSON.stringify(await fn(Number(arg)))}\n`)
    } catch (err) {
      process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`)
    }
  }
}
