/**
 * `node bench/relay-floor-mem.ts`: the floor under a relay's bytes per idle reservation. A server process holds N idle
 * connections from a client process, at the relay's V8 settings (`--max-semi-space-size=2 --expose-gc`), with
 * bench/relay-probe.ts preloaded; after a compacting collection at 0 and at N connections the probe gives the bytes per
 * connection (PSS, live JS heap, V8's committed heap, ArrayBuffers, malloc in use). Layers, each on the one before:
 *
 * - `tcp`: a bare Node TCP socket per connection (net.Server, nothing read or written);
 * - `x25519`: the same socket plus what an encrypted session keeps: an X25519 exchange per connection and two
 *   ChaCha20-Poly1305 keys imported into OpenSSL (KeyObjects) — a Noise session's lasting state;
 * - `libp2p`: a stock js-libp2p node (TCP, Noise, Yamux; no services, no connection monitor) accepting connections
 *   from bare js-libp2p dialers — js-libp2p's own cost per connection, without the relay's services.
 *
 * `warren relay` itself is measured by bench/relay-heap.ts (same probe, same figures).
 *
 *   node bench/relay-floor-mem.ts [--connections 2000] [--modes tcp,x25519,libp2p] [--out file.json]
 *   node bench/relay-floor-mem.ts server <mode>          → {"addr": "host:port" | multiaddr}
 *   node bench/relay-floor-mem.ts client <mode> <addr>   → stdin `connect <n>` → {"open": total}
 */

import {
  createPublicKey,
  createSecretKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { helpIfAsked } from './help.ts'
import { answerCommands, Child } from './proc.ts'
import { formatTable } from './stats.ts'

type Mode = 'tcp' | 'x25519' | 'libp2p'
const MODES: readonly Mode[] = ['tcp', 'x25519', 'libp2p']
const HERE = fileURLToPath(import.meta.url)
const PROBE = fileURLToPath(new URL('relay-probe.ts', import.meta.url))
/** The relay's V8 settings (bin/warren.js). */
const RELAY_FLAGS = ['--max-semi-space-size=2', '--expose-gc']
/** X25519 public keys in DER (SPKI) are 44 bytes. */
const SPKI_LENGTH = 44

/** Both ends: send our X25519 public key, read theirs, derive two ChaCha20-Poly1305 keys and keep them. */
function exchange(socket: Socket, keep: (keys: KeyObject[]) => void): void {
  const pair = generateKeyPairSync('x25519')
  socket.write(pair.publicKey.export({ type: 'spki', format: 'der' }))
  let got = Buffer.alloc(0)
  const onData = (d: Buffer): void => {
    got = Buffer.concat([got, d])
    if (got.length < SPKI_LENGTH) return
    socket.off('data', onData)
    const theirs = createPublicKey({ key: got.subarray(0, SPKI_LENGTH), format: 'der', type: 'spki' })
    const secret = diffieHellman({ privateKey: pair.privateKey, publicKey: theirs })
    const okm = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'warren-bench', 64))
    keep([createSecretKey(okm.subarray(0, 32)), createSecretKey(okm.subarray(32))])
    socket.emit('keyed')
  }
  socket.on('data', onData)
}

async function server(mode: Mode): Promise<void> {
  if (mode === 'libp2p') {
    const node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false },
      connectionManager: { maxConnections: 100_000, inboundConnectionThreshold: 100_000 },
    })
    process.stdout.write(`${JSON.stringify({ addr: node.getMultiaddrs()[0]!.toString() })}\n`)
    return
  }
  const sessions = new Map<Socket, KeyObject[]>()
  const srv = createServer((socket) => {
    socket.on('error', () => {})
    socket.on('close', () => sessions.delete(socket))
    sessions.set(socket, [])
    if (mode === 'x25519') exchange(socket, (keys) => sessions.set(socket, keys))
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  process.stdout.write(`${JSON.stringify({ addr: `127.0.0.1:${(srv.address() as { port: number }).port}` })}\n`)
}

async function client(mode: Mode, addr: string): Promise<void> {
  const held: unknown[] = []
  const sessions: KeyObject[][] = []
  const open = async (): Promise<void> => {
    if (mode === 'libp2p') {
      const node: Libp2p = await createLibp2p({
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionMonitor: { enabled: false },
      })
      await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(30_000) })
      held.push(node)
      return
    }
    const [host, port] = addr.split(':') as [string, string]
    const socket = connect(Number(port), host)
    socket.on('error', () => {})
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      if (mode === 'x25519') {
        socket.once('connect', () => exchange(socket, (keys) => sessions.push(keys)))
        socket.once('keyed', () => resolve())
      } else socket.once('connect', () => resolve())
    })
    held.push(socket)
  }
  await answerCommands({
    connect: async (n) => {
      let next = 0
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next++ < n) await open()
        }),
      )
      return { open: held.length }
    },
  })
}

interface Probe {
  after: NodeJS.MemoryUsage
  smapsAfter: Record<string, number>
  malloc?: { uordblks: number }
  smapsTrimmed: Record<string, number>
}

async function probe(pid: number, dir: string, k: number): Promise<Probe> {
  const file = join(dir, `probe-${k}.json`)
  process.kill(pid, 'SIGUSR2')
  const deadline = Date.now() + 120_000
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no ${file}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return JSON.parse(await readFile(file, 'utf8')) as Probe
}

async function measure(mode: Mode, connections: number, log: (m: string) => void): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), 'warren-floormem-'))
  const children: Child[] = []
  try {
    const srv = new Child(
      `server ${mode}`,
      [...RELAY_FLAGS, '--expose-gc', `--import=${PROBE}`, HERE, 'server', mode],
      {
        WARREN_BENCH_PROBE_DIR: dir,
      },
    )
    children.push(srv)
    const { addr } = await srv.next<{ addr: string }>(30_000)
    await new Promise((r) => setTimeout(r, 1_000))
    const p0 = await probe(srv.proc.pid!, dir, 0)
    let open = 0
    // one client process per 1,000 libp2p dialers (each a whole node); one for all bare sockets
    const per = mode === 'libp2p' ? 1_000 : connections
    while (open < connections) {
      const c = new Child(`client ${mode}`, [HERE, 'client', mode, addr])
      children.push(c)
      await c.next(30_000)
      const r = await c.request<{ open: number }>(`connect ${Math.min(per, connections - open)}`, 600_000)
      open += r.open
    }
    await new Promise((r) => setTimeout(r, 5_000))
    const p1 = await probe(srv.proc.pid!, dir, 1)
    const d = (f: (p: Probe) => number): number => Math.round((f(p1) - f(p0)) / open)
    const row = {
      connections: open,
      pss: d((p) => p.smapsAfter.Pss!),
      pssAfterTrim: d((p) => p.smapsTrimmed.Pss!),
      heapUsedLive: d((p) => p.after.heapUsed),
      heapTotal: d((p) => p.after.heapTotal),
      arrayBuffers: d((p) => p.after.arrayBuffers),
      mallocInUse: d((p) => p.malloc?.uordblks ?? 0),
    }
    log(`${mode}: ${JSON.stringify(row)}`)
    return row
  } finally {
    for (const c of children.reverse()) await c.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

const [role, modeArg, addrArg] = process.argv.slice(2)
if (role === 'server') await server(modeArg as Mode)
else if (role === 'client') await client(modeArg as Mode, addrArg ?? '')
else if (import.meta.url === `file://${process.argv[1]}`) {
  helpIfAsked(import.meta.url)
  const { values: args } = parseArgs({
    options: {
      connections: { type: 'string', default: '2000' },
      modes: { type: 'string', default: MODES.join(',') },
      out: { type: 'string' },
    },
  })
  const log = (m: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`)
  const rows: Record<string, Record<string, number>> = {}
  for (const mode of args.modes.split(',').filter((m): m is Mode => MODES.includes(m as Mode))) {
    rows[mode] = await measure(mode, Number(args.connections), log)
  }
  const keys = ['pss', 'pssAfterTrim', 'heapUsedLive', 'heapTotal', 'arrayBuffers', 'mallocInUse']
  const table = [['bytes per connection', ...Object.keys(rows)]]
  for (const k of keys) table.push([k, ...Object.values(rows).map((r) => String(r[k]))])
  process.stdout.write(`${formatTable(table)}\n`)
  if (args.out !== undefined) await writeFile(args.out, `${JSON.stringify({ settings: args, rows }, null, 2)}\n`)
}
