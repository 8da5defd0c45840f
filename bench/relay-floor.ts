/**
 * Benchmark child process: the smallest two-hop relay Node can be, the floor the gateway's numbers are read
 * against. `front` accepts client connections and carries them over one TCP connection to `back`, which opens
 * one connection per client to the target; frames are an 8-byte header (client id, length) and the bytes, and the
 * frames of one event-loop turn leave in one write (as Warren coalesces). No encryption, no stream library, no
 * HTTP parsing, no flow control: what two Node processes relaying small requests cost on this machine, nothing
 * more. A zero-length frame means "this client is gone".
 *
 *   node bench/relay-floor.ts back <target port>   → prints {"port": N}
 *   node bench/relay-floor.ts front <back port>    → prints {"port": N}
 *
 * Exits on SIGTERM or when stdin closes.
 */
import { connect, createServer, type Socket } from 'node:net'

const HEADER = 8

/** Reads frames from `sock`; returns a function that queues one frame for the next write. */
function framed(sock: Socket, onFrame: (id: number, data: Buffer) => void): (id: number, data: Buffer) => void {
  let pending: Buffer | undefined
  sock.on('data', (chunk: Buffer) => {
    let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
    let at = 0
    while (buf.length - at >= HEADER) {
      const len = buf.readUInt32BE(at + 4)
      if (buf.length - at - HEADER < len) break
      onFrame(buf.readUInt32BE(at), buf.subarray(at + HEADER, at + HEADER + len))
      at += HEADER + len
    }
    buf = buf.subarray(at)
    pending = buf.length === 0 ? undefined : buf
  })
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
    const head = Buffer.allocUnsafe(HEADER)
    head.writeUInt32BE(id, 0)
    head.writeUInt32BE(data.length, 4)
    sock.write(head)
    if (data.length > 0) sock.write(data)
  }
}

const EMPTY = Buffer.alloc(0)

function listen(onSocket: (s: Socket) => void): void {
  const server = createServer({ noDelay: true }, onSocket)
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`)
  })
}

function back(targetPort: number): void {
  listen((link) => {
    const upstreams = new Map<number, Socket>()
    const send = framed(link, (id, data) => {
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
    link.on('error', () => {})
    link.on('close', () => {
      for (const s of upstreams.values()) s.destroy()
    })
  })
}

function front(backPort: number): void {
  const link = connect({ port: backPort, host: '127.0.0.1', noDelay: true })
  const clients = new Map<number, Socket>()
  let nextId = 1
  const send = framed(link, (id, data) => clients.get(id)?.write(data))
  link.on('error', (err) => {
    process.stderr.write(`relay-floor front: ${err.message}\n`)
    process.exit(1)
  })
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

const [role, port] = process.argv.slice(2)
if (role === 'back') back(Number(port))
else if (role === 'front') front(Number(port))
else {
  process.stderr.write('usage: relay-floor.ts back <target port> | front <back port>\n')
  process.exit(2)
}
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
