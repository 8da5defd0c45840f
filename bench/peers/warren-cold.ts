/**
 * Warren's cold connect for bench/peers.ts: the first connection from the running client daemon (B of the pair) to
 * a node it has never met. Each sample is a new serving daemon with its own key, driven through the real CLI like
 * the pair: `warren init`, `warren up`, `warren expose echo … --allow <B>`; B gets a `warren forward <ticket>/echo
 * --no-check` (the ticket carries the node's loopback address, so no lookup). Like the other tunnels' servers, which
 * have served earlier connections by then, the new node has served one before the clock starts: A of the pair (a
 * third node) sends a byte through its echo service with `warren connect`. All of that happens before the clock
 * starts, and B is checked to have no connection to the new node. Timed: a TCP connection to B's forward and a 1-byte
 * echo, through B's dial, Noise, Yamux, the service stream, the new node's connect to the echo server and back.
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child } from '../proc.ts'
import { warren } from '../warren-pair.ts'
import { echoOnce } from './cold.ts'

const WARREN = fileURLToPath(new URL('../../bin/warren.js', import.meta.url))

interface Server {
  daemon: Child
  id: string
  ticket: string
}

/** The pair's daemons: B, the client measured, and A, which warms each new node up. */
export interface ColdNodes {
  clientHome: string
  clientId: string
  warmHome: string
  warmId: string
}

/** Starts a serving daemon in `home` exposing `echo` to the client and the warming node; one echo from the latter. */
async function startServer(home: string, echoPort: number, nodes: ColdNodes): Promise<Server> {
  await warren(home, ['init', '--listen', '/ip4/127.0.0.1/tcp/0'])
  const configPath = join(home, 'config.json')
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
  await writeFile(configPath, `${JSON.stringify({ ...config, proxy: { enabled: false } }, null, 2)}\n`)
  const daemon = new Child(`warren up (${home})`, [WARREN, 'up'], { WARREN_HOME: home, WARREN_LOG: 'info' })
  try {
    await daemon.waitForStderr(/\bready\b/, 30_000)
    const { id, ticket } = JSON.parse(await warren(home, ['id', '--json'])) as { id: string; ticket: string }
    await warren(home, ['expose', 'echo', `/tcp/${echoPort}`, '--allow', nodes.clientId, '--allow', nodes.warmId])
    const warm = spawnSync(process.execPath, [WARREN, 'connect', `${ticket}/echo`], {
      input: 'w',
      env: { ...process.env, WARREN_HOME: nodes.warmHome, WARREN_LOG: 'warn' },
      timeout: 30_000,
    })
    if (warm.status !== 0 || warm.stdout.toString() !== 'w') {
      throw new Error(`warming the new node up: warren connect exited with ${warm.status}: ${warm.stderr}`)
    }
    return { daemon, id, ticket }
  } catch (err) {
    await daemon.stop()
    throw err
  }
}

/** Whether the daemon of `home` has a connection to `id` (from `warren status --json`). */
async function connectedTo(home: string, id: string): Promise<boolean> {
  const st = JSON.parse(await warren(home, ['status', '--json'])) as { peers: { id: string; connected: boolean }[] }
  return st.peers.some((p) => p.id === id && p.connected)
}

/**
 * `n` cold connects from the client daemon, ms each. The new daemons are started one after another and all idle
 * for a second before the first sample; each is stopped after the run.
 */
export async function warrenCold(nodes: ColdNodes, echoPort: number, n: number): Promise<number[]> {
  const { clientHome } = nodes
  const dir = await mkdtemp(join(tmpdir(), 'warren-bench-cold-'))
  const servers: Server[] = []
  const forwards: string[] = []
  try {
    for (let i = 0; i < n; i++) servers.push(await startServer(join(dir, String(i)), echoPort, nodes))
    const ports: number[] = []
    for (const s of servers) {
      const listen = (
        await warren(clientHome, ['forward', `${s.ticket}/echo`, '--listen', '127.0.0.1:0', '--no-check'])
      )
        .split('\n')[0]!
        .trim()
      forwards.push(listen)
      ports.push(Number(listen.slice(listen.lastIndexOf(':') + 1)))
    }
    await new Promise((r) => setTimeout(r, 1_000))
    const samples: number[] = []
    for (const [i, s] of servers.entries()) {
      if (await connectedTo(clientHome, s.id)) throw new Error(`sample ${i}: B is already connected to the new node`)
      samples.push(await echoOnce(ports[i]!))
    }
    return samples
  } finally {
    for (const f of forwards) await warren(clientHome, ['forward', '--remove', f]).catch(() => {})
    await Promise.all(servers.map((s) => s.daemon.stop()))
    await rm(dir, { recursive: true, force: true })
  }
}
