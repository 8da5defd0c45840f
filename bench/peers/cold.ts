/**
 * The cold-connect workload of bench/peers.ts: the first connection to a peer never met, from the moment the user's
 * side asks for it to the first byte echoed back through it. Each tunnel times what a user of it waits for:
 *
 * - tcp: a connect and a 1-byte echo (the floor: no handshake, no peer);
 * - ssh `-L`: a new `ssh -W` process per sample (an ssh user starts one per tunnel): exec, TCP, key exchange, host
 *   key, user key, a channel; sshd forks a process per connection;
 * - stock libp2p and iroh: a new node (new key) per sample, created before the clock starts in a running process,
 *   then dial, handshake, a stream, the echo (bench/peers/libp2p-forward.ts and iroh.ts, `cold`);
 * - holesail: a new holesail client (its own new DHT node, bootstrapped before the clock starts), then its record
 *   lookup, its proxy and the first forwarded connection: a DHT lookup of the server and a Noise handshake over UDX
 *   (bench/peers/holesail.ts, `cold`);
 * - Warren: a new serving daemon per sample (its own key, never met), started, exposing the echo service and known
 *   to the running client daemon by its ticket before the clock starts; then a connection to the client daemon's
 *   forward: dial, Noise, Yamux, the service stream and the echo (bench/peers/warren-cold.ts).
 *
 * Every sample echoes one random byte and fails if another comes back.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { Child } from '../proc.ts'

/** A connect and a 1-byte echo through `port`, in ms; fails if another byte comes back or none within `timeoutMs`. */
export function echoOnce(port: number, timeoutMs = 30_000): Promise<number> {
  const byte = randomBytes(1)
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const s = connect({ host: '127.0.0.1', port, noDelay: true })
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`no echo through port ${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    s.once('connect', () => s.write(byte))
    s.once('data', (d: Buffer) => {
      const ms = performance.now() - t0
      clearTimeout(timer)
      s.destroy()
      if (d[0] === byte[0]) resolve(ms)
      else reject(new Error(`the echo through port ${port} returned another byte`))
    })
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

/** `n` samples of {@link echoOnce}. */
export async function tcpCold(port: number, n: number): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < n; i++) samples.push(await echoOnce(port))
  return samples
}

/**
 * One `ssh -W 127.0.0.1:<echo>` per sample: ms from the spawn to the first byte echoed on its stdout. The process
 * must then exit with status 0 once its stdin ends.
 */
export async function sshCold(ssh: string, args: string[], echoPort: number, n: number): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < n; i++) {
    const byte = randomBytes(1)
    const t0 = performance.now()
    const p = spawn(ssh, [...args.slice(0, -1), '-W', `127.0.0.1:${echoPort}`, args.at(-1)!], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stderr = ''
    p.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2_000)
    })
    const exited = new Promise<number | null>((resolve) => p.once('close', (code) => resolve(code)))
    p.stdin!.write(byte)
    const ms = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ssh -W: no echo within 30 s\n${stderr}`)), 30_000)
      p.stdout!.once('data', (d: Buffer) => {
        clearTimeout(timer)
        if (d[0] === byte[0]) resolve(performance.now() - t0)
        else reject(new Error('ssh -W: the echo returned another byte'))
      })
      p.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    }).catch((err: Error) => {
      p.kill('SIGKILL')
      throw err
    })
    p.stdin!.end()
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))])
    if (code !== 0) {
      p.kill('SIGKILL')
      throw new Error(`ssh -W exited with ${code} after the echo\n${stderr}`)
    }
    samples.push(ms)
  }
  return samples
}

/** Runs a benchmark child whose `cold` role prints `{"samples": [ms, …]}` and exits. */
export async function childCold(name: string, args: string[], timeoutMs: number): Promise<number[]> {
  const c = new Child(name, args)
  try {
    const { samples } = await c.next<{ samples: number[] }>(timeoutMs)
    return samples
  } finally {
    await c.stop()
  }
}
