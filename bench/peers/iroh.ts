/**
 * Benchmark child process: a TCP port forward over iroh's Node binding (`@number0/iroh`, QUIC over UDP), the "iroh"
 * peer of bench/peers.ts. Offline: the minimal preset (no discovery, no external services), relays disabled, both
 * endpoints bound to 127.0.0.1, the client dialling the server's bound socket as a direct address.
 *
 * `iroh.ts serve <port>[,<port>…]`: one endpoint accepting ALPN `warren-bench/forward/1`; every bi-stream starts
 * with one byte, the index of its target port, and is piped to a new TCP connection to that port on 127.0.0.1.
 * Prints `{"id": …, "addrs": […]}`.
 * `iroh.ts client <id> <addr,…> <n>`: one endpoint, one connection to the server, then n loopback TCP ports; every
 * TCP connection to port i becomes one bi-stream starting with the byte i. Prints `{"ports": […]}`.
 * `iroh.ts cold <id> <addr,…> <i> <n>`: n times a new endpoint (a new key), then, timed, a connection to the server,
 * a bi-stream to target i and a 1-byte echo through it. Prints `{"samples": [ms, …]}` and exits.
 * The others exit on SIGTERM or when stdin closes.
 *
 * The binding passes every chunk between Rust and JavaScript as an array of numbers (`Array<number>`, one JS
 * value per byte, both ways), which bounds its throughput far below the QUIC stack's own.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { exitOnStop, tcpTo } from './child.ts'

// @number0/iroh is not a dependency (its optional platform packages are not all published, so npm ci refuses a lock
// file with it): this child runs only where it was installed by hand (`npm install --no-save @number0/iroh@1.1.0`).
// biome-ignore lint/suspicious/noExplicitAny: the binding's types come with the package, which may be absent
type BiStream = any
// biome-ignore lint/suspicious/noExplicitAny: as above
type Connection = any
// biome-ignore lint/suspicious/noExplicitAny: as above
type IrohEndpoint = any
const IROH = '@number0/iroh'
const iroh = (await import(IROH)).default
const { Endpoint, EndpointAddr, EndpointId, RelayMode, presetMinimal } = iroh

const ALPN = Array.from(Buffer.from('warren-bench/forward/1'))
/** Bi-streams the server lets the client have open at once (quinn's default is 100). */
const MAX_STREAMS = 20_000n
/** Largest chunk one `read` returns. */
const CHUNK = 64 * 1024

async function bindLoopback(alpns: number[][]): Promise<IrohEndpoint> {
  const b = Endpoint.builder()
  presetMinimal(b)
  b.relayMode(RelayMode.disabled())
  b.alpns(alpns)
  b.bindAddr('127.0.0.1:0')
  return await b.bind()
}

/** TCP → QUIC: each chunk crosses as a number array; the socket pauses until the stream took it. */
function socketToStream(socket: Socket, bi: BiStream): void {
  const send = bi.send
  let chain = Promise.resolve()
  socket.on('data', (d: Buffer) => {
    socket.pause()
    chain = chain
      .then(() => send.writeAll(Array.from(d)))
      .then(
        () => {
          socket.resume()
        },
        () => {
          socket.destroy()
        },
      )
  })
  socket.on('end', () => {
    chain = chain.then(() => send.finish()).catch(() => {})
  })
  socket.on('error', () => {
    chain = chain.then(() => send.reset(0n)).catch(() => {})
  })
}

/** QUIC → TCP: reads until the stream ends (an empty read), honouring the socket's back-pressure. */
async function streamToSocket(bi: BiStream, socket: Socket): Promise<void> {
  const recv = bi.recv
  try {
    for (;;) {
      const chunk = await recv.read(CHUNK)
      if (chunk.length === 0) break
      if (socket.destroyed) throw new Error('socket closed')
      if (!socket.write(Buffer.from(chunk))) {
        await new Promise<void>((resolve) => {
          socket.once('drain', resolve)
          socket.once('close', resolve)
        })
      }
    }
    socket.end()
  } catch {
    socket.destroy()
    await recv.stop(0n).catch(() => {})
  }
}

function pipe(bi: BiStream, socket: Socket): void {
  socket.setNoDelay(true)
  socketToStream(socket, bi)
  void streamToSocket(bi, socket)
}

async function serveStream(bi: BiStream, ports: number[]): Promise<void> {
  const [index] = await bi.recv.readExact(1)
  const port = ports[index ?? -1]
  if (port === undefined) {
    await bi.send.reset(1n).catch(() => {})
    return
  }
  try {
    pipe(bi, await tcpTo(port))
  } catch {
    await bi.send.reset(2n).catch(() => {})
    await bi.recv.stop(2n).catch(() => {})
  }
}

async function serveConnection(conn: Connection, ports: number[]): Promise<void> {
  conn.setMaxConcurrentBiStreams(MAX_STREAMS)
  for (;;) {
    const bi = await conn.acceptBi().catch(() => undefined)
    if (bi === undefined) return // connection closed
    serveStream(bi, ports).catch(() => {})
  }
}

async function serve(ports: number[]): Promise<void> {
  const ep = await bindLoopback([ALPN])
  process.stdout.write(`${JSON.stringify({ id: ep.id().toString(), addrs: ep.boundSockets() })}\n`)
  exitOnStop(() => ep.close())
  for (;;) {
    const incoming = await ep.acceptNext()
    if (incoming === null) return
    void (async () => {
      const conn = await (await incoming.accept()).connect()
      await serveConnection(conn, ports)
    })().catch(() => {})
  }
}

async function client(id: string, addrs: string[], n: number): Promise<void> {
  const ep = await bindLoopback([])
  const conn = await ep.connect(new EndpointAddr(EndpointId.fromString(id), null, addrs), ALPN)
  const servers: Server[] = []
  const ports: number[] = []
  for (let i = 0; i < n; i++) {
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {})
      socket.pause()
      conn
        .openBi()
        .then(async (bi: BiStream) => {
          await bi.send.writeAll([i])
          pipe(bi, socket)
          socket.resume()
        })
        .catch(() => socket.destroy())
    })
    await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, resolve))
    ports.push((server.address() as { port: number }).port)
    servers.push(server)
  }
  process.stdout.write(`${JSON.stringify({ ports })}\n`)
  exitOnStop(async () => {
    for (const s of servers) s.close()
    conn.close(0n, [])
    await ep.close()
  })
}

/** The first connection of an endpoint never met: a new endpoint per sample; connect, bi-stream and echo, timed. */
async function cold(id: string, addrs: string[], index: number, n: number): Promise<void> {
  const samples: number[] = []
  for (let i = 0; i < n; i++) {
    const ep = await bindLoopback([])
    try {
      const byte = randomBytes(1)[0]!
      const t0 = performance.now()
      const conn = await ep.connect(new EndpointAddr(EndpointId.fromString(id), null, addrs), ALPN)
      const bi = await conn.openBi()
      await bi.send.writeAll([index, byte])
      const chunk = await bi.recv.read(1)
      samples.push(performance.now() - t0)
      if (chunk[0] !== byte)
        throw new Error(`sample ${i}: the echo returned ${chunk.length === 0 ? 'nothing' : 'another byte'}`)
      await bi.send.finish().catch(() => {})
      conn.close(0n, [])
    } finally {
      await ep.close()
    }
  }
  process.stdout.write(`${JSON.stringify({ samples })}\n`)
  process.exit(0)
}

const [role, arg, addrs, count, n] = process.argv.slice(2)
if (role === 'serve' && arg !== undefined) await serve(arg.split(',').map(Number))
else if (role === 'client' && arg !== undefined && addrs !== undefined)
  await client(arg, addrs.split(','), Number(count ?? 1))
else if (role === 'cold' && arg !== undefined && addrs !== undefined)
  await cold(arg, addrs.split(','), Number(count ?? 0), Number(n ?? 10))
else {
  process.stderr.write(
    'usage: iroh.ts serve <port,…> | client <endpoint-id> <ip:port,…> <n> | cold <endpoint-id> <ip:port,…> <i> <n>\n',
  )
  process.exit(2)
}
