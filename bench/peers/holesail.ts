/**
 * Benchmark child process: holesail (`holesail-server`, `holesail-client`, on hyperdht: Noise over UDX, UDP), the
 * "holesail" peer of bench/peers.ts, kept offline on a local HyperDHT testnet: never the public DHT.
 *
 * holesail constructs its own `new HyperDHT()` (public bootstrap nodes) and takes no DHT option, so the server and
 * client roles put a subclass of HyperDHT into the require cache under the path holesail resolves `hyperdht` to: the
 * subclass defaults `bootstrap` to the local testnet and binds to 127.0.0.1. Everything else is holesail's own code:
 * the server's announce and DHT record, the client's record lookup, and one `dht.connect(key, {reusableSocket})` per
 * forwarded TCP connection.
 *
 * `holesail.ts testnet <size>`: a local DHT of `size` nodes on 127.0.0.1; prints `{"bootstrap": "127.0.0.1:<port>"}`.
 * `holesail.ts serve <bootstrap> <port>[,<port>…]`: one holesail server per target port (holesail forwards one port
 * per instance, each with its own DHT node); prints `{"keys": […]}`.
 * `holesail.ts client <bootstrap> <key>[,<key>…]`: one holesail client per key, each listening on a free loopback
 * port; prints `{"ports": […]}`.
 * `holesail.ts cold <bootstrap> <key> <n>`: n times a new holesail client (a new DHT node, bootstrapped first), then,
 * timed, its `connect` (record lookup, local proxy) and a 1-byte echo through its first forwarded connection (a DHT
 * lookup of the server, a Noise handshake over UDX). Prints `{"samples": [ms, …]}` and exits.
 * The others exit on SIGTERM or when stdin closes.
 */
import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import Module, { createRequire } from 'node:module'
import { connect } from 'node:net'
import { exitOnStop } from './child.ts'

const require = createRequire(import.meta.url)

interface Destroyable {
  destroy(): Promise<void>
}

/**
 * holesail's network helper (`@holesail/hyper-cmd-lib-net`) requires `bare-dgram` for its UDP mode, a module for the
 * Bare runtime that cannot load in Node (`require.addon`); the TCP forwarding measured here never uses it, so its
 * cache entry is Node's own dgram.
 */
function dgramForBareDgram(): void {
  const fromNet = createRequire(require.resolve('@holesail/hyper-cmd-lib-net'))
  const path = fromNet.resolve('bare-dgram')
  const m = new Module(path)
  m.filename = path
  m.exports = dgram
  m.loaded = true
  fromNet.cache[path] = m
}

/** Makes every `require('hyperdht')` of holesail return a HyperDHT bootstrapped from `bootstrap` on loopback. */
function useLocalDht(bootstrap: string): void {
  dgramForBareDgram()
  const [host, port] = bootstrap.split(':')
  for (const lib of ['holesail-server', 'holesail-client']) {
    const fromLib = createRequire(require.resolve(lib))
    const path = fromLib.resolve('hyperdht')
    const HyperDHT = fromLib('hyperdht')
    if (HyperDHT.localBench === true) continue
    class LocalDHT extends HyperDHT {
      static localBench = true
      constructor(opts: Record<string, unknown> = {}) {
        super({ bootstrap: [{ host, port: Number(port) }], host: '127.0.0.1', ...opts })
      }
    }
    fromLib.cache[path]!.exports = LocalDHT
  }
}

async function testnet(size: number): Promise<void> {
  const createTestnet = require('hyperdht/testnet.js')
  const net = await createTestnet(size, { host: '127.0.0.1' })
  const [b] = net.bootstrap as { host: string; port: number }[]
  process.stdout.write(`${JSON.stringify({ bootstrap: `${b!.host}:${b!.port}` })}\n`)
  exitOnStop(() => net.destroy())
}

async function serve(bootstrap: string, ports: number[]): Promise<void> {
  useLocalDht(bootstrap)
  const HolesailServer = require('holesail-server')
  const servers: (Destroyable & { key: string })[] = []
  for (const port of ports) {
    const s = new HolesailServer()
    servers.push(s)
    await s.start({ port, host: '127.0.0.1' })
  }
  process.stdout.write(`${JSON.stringify({ keys: servers.map((s) => s.key) })}\n`)
  exitOnStop(async () => {
    await Promise.all(servers.map((s) => s.destroy()))
  })
}

async function client(bootstrap: string, keys: string[]): Promise<void> {
  useLocalDht(bootstrap)
  const HolesailClient = require('holesail-client')
  const clients: (Destroyable & { proxy: { address(): { port: number } } })[] = []
  for (const key of keys) {
    const c = new HolesailClient({ key })
    clients.push(c)
    await new Promise<void>((resolve, reject) => {
      c.connect({ port: 0, host: '127.0.0.1' }, resolve).catch(reject)
    })
  }
  process.stdout.write(`${JSON.stringify({ ports: clients.map((c) => c.proxy.address().port) })}\n`)
  exitOnStop(async () => {
    await Promise.all(clients.map((c) => c.destroy()))
  })
}

/** The first connection of a client never met: a new client per sample; its connect and a 1-byte echo, timed. */
async function cold(bootstrap: string, key: string, n: number): Promise<void> {
  useLocalDht(bootstrap)
  const HolesailClient = require('holesail-client')
  const samples: number[] = []
  for (let i = 0; i < n; i++) {
    const c = new HolesailClient({ key })
    try {
      await c.dht.fullyBootstrapped()
      const byte = randomBytes(1)
      const t0 = performance.now()
      await new Promise<void>((resolve, reject) => {
        c.connect({ port: 0, host: '127.0.0.1' }, resolve).catch(reject)
      })
      const echoed = await new Promise<number | undefined>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: c.proxy.address().port, noDelay: true })
        s.once('connect', () => s.write(byte))
        s.once('data', (d: Buffer) => {
          s.destroy()
          resolve(d[0])
        })
        s.once('error', reject)
      })
      samples.push(performance.now() - t0)
      if (echoed !== byte[0]) throw new Error(`sample ${i}: the echo returned another byte`)
    } finally {
      await c.destroy()
    }
  }
  process.stdout.write(`${JSON.stringify({ samples })}\n`)
  process.exit(0)
}

const [role, a, b, c] = process.argv.slice(2)
if (role === 'testnet') await testnet(Number(a ?? 5))
else if (role === 'serve' && a !== undefined && b !== undefined) await serve(a, b.split(',').map(Number))
else if (role === 'client' && a !== undefined && b !== undefined) await client(a, b.split(','))
else if (role === 'cold' && a !== undefined && b !== undefined) await cold(a, b, Number(c ?? 10))
else {
  process.stderr.write(
    'usage: holesail.ts testnet <size> | serve <host:port> <port,…> | client <host:port> <key,…> | cold <host:port> <key> <n>\n',
  )
  process.exit(2)
}
