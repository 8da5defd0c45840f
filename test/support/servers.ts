/** Real TCP servers for tests: echo, hash-after-FIN, and a server that never reads. */
import { createHash } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before } from 'node:test'

export interface TestServer {
  server: Server
  port: number
  sockets: Set<Socket>
  /** Connections accepted so far. */
  accepted(): number
  close(): Promise<void>
}

async function start(handler: (s: Socket) => void, allowHalfOpen = true): Promise<TestServer> {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server = createServer({ allowHalfOpen }, (s) => {
    accepted++
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    handler(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no port')
  return {
    server,
    port: addr.port,
    sockets,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      }),
  }
}

/** Echoes everything; ends its side after the client's FIN. */
export function echoServer(): Promise<TestServer> {
  return start((s) => s.pipe(s))
}

/** Reads everything, then answers `<bytes> <sha256 hex>` and closes. */
export function hashServer(): Promise<TestServer> {
  return start((s) => {
    const h = createHash('sha256')
    let n = 0
    s.on('data', (d: Buffer) => {
      h.update(d)
      n += d.length
    })
    s.on('end', () => s.end(`${n} ${h.digest('hex')}`))
  })
}

/** Accepts and never reads until `resume` is called on the socket. */
export function stalledServer(): Promise<TestServer> {
  return start((s) => s.pause())
}

/** Reads and discards, never writes; closes on the client's FIN like most servers (no half-open). */
export function sinkServer(): Promise<TestServer> {
  return start((s) => s.resume(), false)
}

/** A free port: listen on 0 and close. */
export async function freePort(): Promise<number> {
  const s = await start(() => {})
  await s.close()
  return s.port
}

/**
 * A hash server for the tests of the enclosing `describe`: started before them, closed after. `services()` is the
 * `services` config that exposes it to everyone as `hash`.
 */
export function hashServiceForSuite(): { services(): Record<string, { target: string; allow: string[] }> } {
  let hash: TestServer | undefined
  before(async () => {
    hash = await hashServer()
  })
  after(async () => {
    await hash?.close()
  })
  return { services: () => ({ hash: { target: `/tcp/${hash!.port}`, allow: ['*'] } }) }
}
