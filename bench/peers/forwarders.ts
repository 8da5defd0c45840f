/**
 * The tunnels bench/peers.ts compares, each started on loopback in front of the same three targets (xfer, echo and
 * HTTP servers): plain TCP (no forwarder), socat, OpenSSH `-L`, a stock js-libp2p forwarder, holesail, iroh and
 * Warren. Each gives its three client-side ports and the pids of its two ends (their process trees are measured for
 * memory).
 */

import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child } from '../proc.ts'
import { startPair, warren } from '../warren-pair.ts'
import { childCold, sshCold, tcpCold } from './cold.ts'
import { warrenCold } from './warren-cold.ts'

export interface Targets {
  xfer: number
  echo: number
  http: number
}

export interface Tunnel {
  name: string
  /** Client-side ports, in front of the targets of the same name. */
  ports: Targets
  /** The forwarder's two ends (empty for plain TCP); PSS counts them and their descendants. */
  pids: number[]
  /** Largest bulk transfer per direction this tunnel gets, when it is too slow for `--bulk` in bounded time. */
  maxBulkMiB?: number
  /** Why {@link maxBulkMiB} is set: printed with the results. */
  bulkNote?: string
  /** An HTTP URL that reaches the HTTP target another way through the same tunnel (Warren: its gateway). */
  gatewayUrl?: string
  /** `n` first connections to a peer never met, ms each (bench/peers/cold.ts says what each tunnel times). */
  cold?: (n: number) => Promise<number[]>
  /** The only workloads this tunnel runs, when it cannot run all of them, and why ({@link onlyNote}). */
  only?: readonly string[]
  onlyNote?: string
  stop(): Promise<void>
}

/** A tunnel that could not be measured here, and why. */
export interface NotMeasured {
  name: string
  reason: string
}

export const SOCAT = '/usr/bin/socat'
const SSHD = '/usr/sbin/sshd'
const SSH = '/usr/bin/ssh'
const SSH_KEYGEN = '/usr/bin/ssh-keygen'

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** Resolves once `port` accepts a TCP connection; fails after `timeoutMs`. */
async function accepting(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port })
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${what}: port ${port} not accepting within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function stopProc(p: ChildProcess, graceMs = 3_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => p.kill('SIGKILL'), graceMs)
    p.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    p.kill('SIGTERM')
  })
}

function spawnLogged(cmd: string, args: string[]): { proc: ChildProcess; log: () => string } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  proc.stderr!.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-10_000)
  })
  return { proc, log: () => log }
}

export function plainTcp(t: Targets): Tunnel {
  return { name: 'tcp', ports: { ...t }, pids: [], cold: (n) => tcpCold(t.echo, n), stop: async () => {} }
}

/** socat with one forked process per connection: no crypto, the cost of a forwarding process alone. */
export async function socat(t: Targets): Promise<Tunnel | NotMeasured> {
  if (!existsSync(SOCAT)) return { name: 'socat', reason: `${SOCAT} is not installed (apt package socat)` }
  const procs: ChildProcess[] = []
  const ports = { ...t }
  for (const key of ['xfer', 'echo', 'http'] as const) {
    const port = await freePort()
    const { proc } = spawnLogged(SOCAT, [
      `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,nodelay,backlog=4096`,
      `TCP:127.0.0.1:${t[key]},nodelay`,
    ])
    procs.push(proc)
    ports[key] = port
    await accepting(port, 10_000, 'socat')
  }
  return {
    name: 'socat',
    ports,
    pids: procs.map((p) => p.pid!),
    stop: async () => {
      await Promise.all(procs.map((p) => stopProc(p)))
    },
  }
}

/**
 * OpenSSH `-L`: Debian's sshd as a child on a loopback port with its own host key, config and authorized key in a
 * temp dir, and `ssh -N` with one `-L` per target, cipher chacha20-poly1305 (OpenSSH's default), no compression.
 */
export async function openssh(t: Targets): Promise<Tunnel | NotMeasured> {
  const missing = [SSHD, SSH, SSH_KEYGEN].filter((p) => !existsSync(p))
  if (missing.length > 0) return { name: 'ssh -L', reason: `${missing.join(', ')} not installed` }
  const dir = await mkdtemp(join(tmpdir(), 'warren-bench-ssh-'))
  for (const name of ['host_key', 'user_key']) {
    execFileSync(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)])
  }
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')))
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 }) // privilege-separation directory
  const sshPort = await freePort()
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `ListenAddress 127.0.0.1:${sshPort}`,
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding yes',
      `PidFile ${join(dir, 'sshd.pid')}`,
      '',
    ].join('\n'),
  )
  const sshd = spawnLogged(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')])
  const cleanup = async (): Promise<void> => {
    await stopProc(sshd.proc)
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await accepting(sshPort, 10_000, `sshd\n${sshd.log()}`)
    const ports = { xfer: await freePort(), echo: await freePort(), http: await freePort() }
    const forwards = (['xfer', 'echo', 'http'] as const).flatMap((k) => [
      '-L',
      `127.0.0.1:${ports[k]}:127.0.0.1:${t[k]}`,
    ])
    const user = process.env.USER ?? 'root'
    const common = [
      '-F',
      '/dev/null',
      '-c',
      'chacha20-poly1305@openssh.com',
      '-o',
      'Compression=no',
      '-o',
      'ExitOnForwardFailure=yes',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
      '-i',
      join(dir, 'user_key'),
      '-p',
      String(sshPort),
    ]
    const ssh = spawnLogged(SSH, ['-N', ...common, ...forwards, `${user}@127.0.0.1`])
    try {
      for (const k of ['xfer', 'echo', 'http'] as const) await accepting(ports[k], 15_000, `ssh -L\n${ssh.log()}`)
    } catch (err) {
      await stopProc(ssh.proc)
      throw err
    }
    return {
      name: 'ssh -L',
      ports,
      pids: [ssh.proc.pid!, sshd.proc.pid!],
      cold: (n) => sshCold(SSH, [...common, `${user}@127.0.0.1`], t.echo, n),
      stop: async () => {
        await stopProc(ssh.proc)
        await cleanup()
      },
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

/** js-libp2p with stock TCP, Noise and Yamux (bench/peers/libp2p-forward.ts), one connection, a stream per client. */
export async function stockLibp2p(t: Targets): Promise<Tunnel> {
  const script = fileURLToPath(new URL('libp2p-forward.ts', import.meta.url))
  const server = new Child('libp2p forward serve', [script, 'serve', [t.xfer, t.echo, t.http].join(',')])
  try {
    const { addr } = await server.next<{ addr: string }>(30_000)
    const client = new Child('libp2p forward client', [script, 'client', addr, '3'])
    const { ports } = await client.next<{ ports: number[] }>(30_000).catch(async (err: unknown) => {
      await client.stop()
      throw err
    })
    return {
      name: 'libp2p (stock)',
      ports: { xfer: ports[0]!, echo: ports[1]!, http: ports[2]! },
      pids: [client.proc.pid!, server.proc.pid!],
      cold: (n) => childCold('libp2p cold', [script, 'cold', addr, '1', String(n)], 60_000 + n * 10_000),
      stop: async () => {
        await Promise.all([client.stop(), server.stop()])
      },
    }
  } catch (err) {
    await server.stop()
    throw err
  }
}

/**
 * The smallest two-hop relay two Node processes can be (bench/relay-floor.ts): one TCP connection between its ends,
 * an 8-byte frame header, the frames of one event-loop turn in one write, no encryption, no stream library, no flow
 * control. What any forwarder written in Node reaches here; HTTP only (it has no flow control or half-close for the
 * other workloads).
 */
export async function nodeFloor(t: Targets): Promise<Tunnel> {
  const script = fileURLToPath(new URL('../relay-floor.ts', import.meta.url))
  const back = new Child('node floor back', [script, 'back', String(t.http)])
  try {
    const { port: backPort } = await back.next<{ port: number }>(30_000)
    const front = new Child('node floor front', [script, 'front', String(backPort)])
    const { port } = await front.next<{ port: number }>(30_000).catch(async (err: unknown) => {
      await front.stop()
      throw err
    })
    return {
      name: 'node floor',
      ports: { ...t, http: port },
      pids: [front.proc.pid!, back.proc.pid!],
      only: ['http'],
      onlyNote: 'HTTP only: no flow control or half-close, so no bulk, set-up or memory workloads',
      stop: async () => {
        await Promise.all([front.stop(), back.stop()])
      },
    }
  } catch (err) {
    await back.stop()
    throw err
  }
}

/**
 * Two Warren daemons started with the CLI (bench/warren-pair.ts), a `warren forward` per target, limits raised; B's
 * access port on, for the HTTP gateway (`/http/<A>/web/`).
 */
export async function warrenTunnel(t: Targets): Promise<Tunnel> {
  // limits raised so the idle-connection phase is not capped by the default 1,024 streams per node
  const limits = { maxStreams: 20_000, maxStreamsPerPeer: 20_000 }
  const accessPort = await freePort()
  const pair = await startPair({ xfer: t.xfer, echo: t.echo, web: t.http }, {}, { config: { limits }, accessPort })
  const f = pair.forwards
  const b = JSON.parse(await warren(pair.homes.b, ['id', '--json'])) as { id: string }
  return {
    name: 'warren',
    ports: { xfer: f.xfer!.port, echo: f.echo!.port, http: f.web!.port },
    pids: pair.daemons.map((d) => d.proc.pid!),
    gatewayUrl: `http://127.0.0.1:${accessPort}/http/${pair.aId}/web/`,
    cold: (n) =>
      warrenCold({ clientHome: pair.homes.b, clientId: b.id, warmHome: pair.homes.a, warmId: pair.aId }, t.echo, n),
    stop: () => pair.stop(),
  }
}

/**
 * iroh through its Node binding (bench/peers/iroh.ts): an endpoint on each side, one QUIC connection between them
 * over loopback (relays off, minimal preset, direct address), a bi-stream per forwarded TCP connection.
 */
const IROH_BULK_MIB = 64

export async function irohTunnel(t: Targets): Promise<Tunnel | NotMeasured> {
  try {
    createRequire(import.meta.url).resolve('@number0/iroh')
  } catch {
    return {
      name: 'iroh',
      reason:
        'not installed: `npm install --no-save @number0/iroh@1.1.0` to measure it (not a dependency: its optional platform packages are not all published, so npm ci refuses a lock file with it)',
    }
  }
  const script = fileURLToPath(new URL('iroh.ts', import.meta.url))
  const server = new Child('iroh forward serve', [script, 'serve', [t.xfer, t.echo, t.http].join(',')])
  try {
    const { id, addrs } = await server.next<{ id: string; addrs: string[] }>(30_000)
    const client = new Child('iroh forward client', [script, 'client', id, addrs.join(','), '3'])
    const { ports } = await client.next<{ ports: number[] }>(30_000).catch(async (err: unknown) => {
      await client.stop()
      throw err
    })
    return {
      name: 'iroh',
      ports: { xfer: ports[0]!, echo: ports[1]!, http: ports[2]! },
      pids: [client.proc.pid!, server.proc.pid!],
      cold: (n) => childCold('iroh cold', [script, 'cold', id, addrs.join(','), '1', String(n)], 60_000 + n * 10_000),
      maxBulkMiB: IROH_BULK_MIB,
      bulkNote: `${IROH_BULK_MIB} MiB per direction: the Node binding moves bytes as JS number arrays (a few MiB/s)`,
      stop: async () => {
        await Promise.all([client.stop(), server.stop()])
      },
    }
  } catch (err) {
    await server.stop()
    throw err
  }
}

/**
 * holesail server and client (bench/peers/holesail.ts) on a local HyperDHT testnet of 5 nodes in a third process,
 * which is not counted in the tunnel's memory: one holesail instance per target port on each side, one hyperdht
 * connection per forwarded TCP connection.
 */
export async function holesailTunnel(t: Targets): Promise<Tunnel> {
  const script = fileURLToPath(new URL('holesail.ts', import.meta.url))
  const dht = new Child('hyperdht testnet', [script, 'testnet', '5'])
  const children: Child[] = [dht]
  try {
    const { bootstrap } = await dht.next<{ bootstrap: string }>(30_000)
    const server = new Child('holesail server', [script, 'serve', bootstrap, [t.xfer, t.echo, t.http].join(',')])
    children.push(server)
    const { keys } = await server.next<{ keys: string[] }>(60_000)
    const client = new Child('holesail client', [script, 'client', bootstrap, keys.join(',')])
    children.push(client)
    const { ports } = await client.next<{ ports: number[] }>(60_000)
    return {
      name: 'holesail',
      ports: { xfer: ports[0]!, echo: ports[1]!, http: ports[2]! },
      pids: [client.proc.pid!, server.proc.pid!],
      cold: (n) => childCold('holesail cold', [script, 'cold', bootstrap, keys[1]!, String(n)], 60_000 + n * 10_000),
      stop: async () => {
        await Promise.all(children.map((c) => c.stop()))
      },
    }
  } catch (err) {
    await Promise.all(children.map((c) => c.stop()))
    throw err
  }
}
