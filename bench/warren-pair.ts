/**
 * Two Warren daemons on loopback, driven only through the real CLI (`bin/warren.js`): homes in a temp dir,
 * `warren init`, `warren up`, `warren expose` on A (allowing B), `warren forward` on B.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child, node } from './proc.ts'

const WARREN = fileURLToPath(new URL('../bin/warren.js', import.meta.url))

export interface Endpoint {
  host: string
  port: number
}

export interface WarrenPair {
  /** Forward ports on B, one per service exposed on A. */
  forwards: Record<string, Endpoint>
  /** Node id of A (the host of the services). */
  aId: string
  /** The daemons' homes (WARREN_HOME), for CLI commands such as `warren status`. */
  homes: { a: string; b: string }
  daemons: Child[]
  stop(): Promise<void>
}

export function warren(home: string, args: string[]): Promise<string> {
  return node([WARREN, ...args], { WARREN_HOME: home, WARREN_LOG: 'warn' })
}

/** Starts A and B, exposes each `services` entry (name → local TCP port) on A, and forwards it on B. */
export async function startPair(
  services: Record<string, number>,
  daemonEnv: NodeJS.ProcessEnv = {},
  /** Run B's access port (SOCKS5, HTTP proxy, gateway) on this loopback port; default: off on both. */
  opts: {
    accessPort?: number
    /** Config sections merged over both daemons' config.json (e.g. `limits`), last. */
    config?: Record<string, unknown>
    /** Node options for both daemons ahead of the script (V8 flags that NODE_OPTIONS refuses, e.g. `--trace-deopt`). */
    nodeArgs?: string[]
  } = {},
): Promise<WarrenPair> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-bench-'))
  const homes = { a: join(dir, 'a'), b: join(dir, 'b') }
  const daemons: Child[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(daemons.map((d) => d.stop()))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (const home of Object.values(homes)) {
      await warren(home, ['init', '--listen', '/ip4/127.0.0.1/tcp/0'])
      // two daemons on one host: keep the access port (SOCKS/HTTP proxy, default 127.0.0.1:4780) out of the way
      const configPath = join(home, 'config.json')
      const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
      const proxy =
        home === homes.b && opts.accessPort !== undefined
          ? { listen: `127.0.0.1:${opts.accessPort}` }
          : { enabled: false }
      await writeFile(configPath, `${JSON.stringify({ ...config, proxy, ...opts.config }, null, 2)}\n`)
      const d = new Child(`warren up (${home})`, [...(opts.nodeArgs ?? []), WARREN, 'up'], {
        ...daemonEnv,
        WARREN_HOME: home,
        WARREN_LOG: daemonEnv.WARREN_LOG ?? 'info',
      })
      daemons.push(d)
    }
    for (const d of daemons) await d.waitForStderr(/\bready\b/, 30_000)
    const a = JSON.parse(await warren(homes.a, ['id', '--json'])) as { ticket: string; id: string }
    const b = JSON.parse(await warren(homes.b, ['id', '--json'])) as { id: string }
    const forwards: Record<string, Endpoint> = {}
    for (const [name, port] of Object.entries(services)) {
      await warren(homes.a, ['expose', name, `/tcp/${port}`, '--allow', b.id])
      // --no-check: the bench's servers take every connection as a measured transfer
      const listen = (
        await warren(homes.b, ['forward', `${a.ticket}/${name}`, '--listen', '127.0.0.1:0', '--no-check'])
      )
        .split('\n')[0]!
        .trim()
      const m = /^(.*):(\d+)$/.exec(listen)
      if (m === null) throw new Error(`warren forward printed "${listen}", expected host:port`)
      forwards[name] = { host: m[1]!, port: Number(m[2]) }
    }
    return { forwards, aId: a.id, homes, daemons, stop }
  } catch (err) {
    const logs = daemons.map((d) => `--- ${d.name}\n${d.stderr}`).join('\n')
    await stop()
    throw new Error(`${(err as Error).message}\n${logs}`)
  }
}
