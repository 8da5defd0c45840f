/**
 * Benchmark child process: the smallest two-hop relay Node can be, the floor the gateway's numbers are read
 * against. `front` accepts client connections and carries them over one TCP connection to `back`, which opens
 * one connection per client to the target; frames are an 8-byte header (client id, length) and the bytes, and the
 * frames of one event-loop turn leave in one write (as Warren coalesces). No encryption, no stream library, no
 * HTTP parsing, no flow control: what two Node processes relaying small requests cost on this machine, nothing
 * more. A zero-length frame means "this client is gone".
 *
 * The relay ends (`relayBack`, `relayFront`) take any link; relay-floor-libp2p.ts runs them over a libp2p stream.
 *
 *   node bench/relay-floor.ts back <target port>   → prints {"port": N}
 *   node bench/relay-floor.ts front <back port>    → prints {"port": N}
 *
 * Exits on SIGTERM or when stdin closes.
 */
import { connect, createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'

const HEADER = 8
const EMPTY = Buffer.alloc(0)

export type OnFrame = (id: number, data: Buffer) => void
/** Queues one frame for the link's next write. */
export type SendFrame = (id: number, data: Buffer) => void
/** A link: given where incoming frames go, returns how to send frames. */
export type Link = (onFrame: OnFrame) => SendFrame

/** Splits a byte stream into frames; returns the function to feed chunks to. */
export function frameReader(onFrame: OnFrame): (chunk: Buffer) => void {
  let pending: Buffer | undefined
  return (chunk) => {
    let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
    let at = 0
    while (buf.length - at >= HEADER) {
      const len = buf.readUInt32BE(at + 4)
      if (buf.length - at - HEADER < len) break
      onFrame(buf.readUInt32BE(at), buf.subarray(at + HEADER, at + HEADER + len))
      at += HEADER + len
    }
    buf = buf.subarray(at)
    pending = buf.length === 0 ? undefined : Buffer.from(buf)
  }
}

export function frameHeader(id: number, len: number): Buffer {
  const head = Buffer.allocUnsafe(HEADER)
  head.writeUInt32BE(id, 0)
  head.writeUInt32BE(len, 4)
  return head
}

/** A link over a TCP socket: the frames of one turn corked into one write. */
function socketLink(sock: Socket): Link {
  return (onFrame) => {
    sock.on('data', frameReader(onFrame))
    let corked = false
    const uncork = (): void => {
      corked = false
      sock.uncork()
    }
    return (id, data) => {
      if (!corked) {
        corked = true
        sock.cork()
        setImmediate(uncork)
      }
      sock.write(frameHeader(id, data.length))
      if (data.length > 0) sock.write(data)
    }
  }
}

/** Listens on 127.0.0.1 (a free port) and prints `{"port": N}`. */
export function listen(onSocket: (s: Socket) => void): void {
  const server = createServer({ noDelay: true }, onSocket)
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`)
  })
}

/** The end at the target: one connection to it per client id; returns a clean-up for when the link is gone. */
export function relayBack(link: Link, targetPort: number): () => void {
  const upstreams = new Map<number, Socket>()
  const send = link((id, data) => {
    let up = upstreams.get(id)
    if (data.length === 0) {
      up?.destroy()
      upstreams.delete(id)
      return
    }
    if (up === undefined) {
      const s = connect({ port: targetPort, host: '127.0.0.1', noDelay: true })
      s.on('data', (d: Buffer) => send(id, d))
      s.on('error', () => {})
      s.on('close', () => {
        if (upstreams.get(id) === s) upstreams.delete(id)
      })
      upstreams.set(id, s)
      up = s
    }
    up.write(data)
  })
  return () => {
    for (const s of upstreams.values()) s.destroy()
  }
}

/** The end at the clients: accepts them on a free port and carries each over the link. */
export function relayFront(link: Link): void {
  const clients = new Map<number, Socket>()
  let nextId = 1
  const send = link((id, data) => clients.get(id)?.write(data))
  listen((client) => {
    const id = nextId++
    clients.set(id, client)
    client.on('data', (d: Buffer) => send(id, d))
    client.on('error', () => {})
    client.on('close', () => {
      clients.delete(id)
      send(id, EMPTY)
    })
  })
}

/** Exit on SIGTERM or when the parent closes stdin. */
export function exitWithParent(): void {
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
  process.on('SIGTERM', () => process.exit(0))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [role, port] = process.argv.slice(2)
  if (role === 'back') {
    listen((sock) => {
      const cleanUp = relayBack(socketLink(sock), Number(port))
      sock.on('error', () => {})
      sock.on('close', cleanUp)
    })
  } else if (role === 'front') {
    const sock = connect({ port: Number(port), host: '127.0.0.1', noDelay: true })
    sock.on('error', (err) => {
      process.stderr.write(`relay-floor front: ${err.message}\n`)
      process.exit(1)
    })
    relayFront(socketLink(sock))
  } else {
    process.stderr.write('usage: relay-floor.ts back <target port> | front <back port>\n')
    process.exit(2)
  }
  exitWithParent()
}
