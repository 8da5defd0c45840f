/**
 * The soak's target services, in the soak process: a TCP service and an HTTP service that send or take a known
 * number of deterministic bytes, check every upload themselves (size and SHA-256), and can be "killed" mid-transfer
 * (every open connection reset, as when a service crashes) while staying up for the next connection.
 *
 * TCP service, one transfer per connection, a header line first:
 * - `D <size> <seed>\n`: the server sends `ByteSource(size, seed)`, then a FIN.
 * - `U <id> <size> <seed> <pace>\n` then the bytes: the server reads them at `<pace>` (`fast`, `<n>mibps`, `bursts`),
 *   answers `OK <bytes> <sha256>` (or `BAD …` when a cleanly ended upload is short or wrong) and ends; an upload that
 *   ends with an error gets a reset.
 *
 * HTTP service: `GET /blob/<size>/<seed>` (Content-Length), `POST /upload` with `x-id`, `x-size`, `x-seed`, `x-pace`.
 */
import { createServer as createHttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { ByteSource, pace, pump, type ReadPace, readPaced } from '../../test/support/transfer.ts'

/** How the receiving service saw an upload end. */
export interface UploadSeen {
  bytes: number
  /** `end` (clean end of stream) or the error message. */
  ending: string
  /** Clean end, every byte, SHA-256 equal. */
  whole: boolean
}

const digests = new Map<string, string>()

/** SHA-256 of `ByteSource(size, seed)`, computed once per (size, seed). */
export function digestOf(size: number, seed: number): string {
  const key = `${size}/${seed}`
  let d = digests.get(key)
  if (d === undefined) {
    d = ByteSource.digest(size, seed)
    digests.set(key, d)
  }
  return d
}

export function paceOf(name: string): ReadPace {
  const rate = /^(\d+)mibps$/.exec(name)
  if (rate !== null) return pace.mibps(Number(rate[1]))
  return name === 'bursts' ? pace.bursts() : pace.fast
}

export interface SoakServers {
  tcpPort: number
  httpPort: number
  /** Uploads by transfer id, as the service saw them end. */
  uploads: Map<number, UploadSeen>
  /** Ids of the uploads whose head reached the service. */
  started: Set<number>
  /** Resets every open connection of the TCP service or the HTTP service (the service crashed mid-transfer). */
  kill(which: 'tcp' | 'http'): number
  close(): Promise<void>
}

function tracked(server: Server): Set<Socket> {
  const sockets = new Set<Socket>()
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  return sockets
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  )
}

function judge(r: { bytes: number; sha256: string; ending: string }, size: number, seed: number): UploadSeen {
  const whole = r.ending === 'end' && r.bytes === size && r.sha256 === digestOf(size, seed)
  return { bytes: r.bytes, ending: r.ending, whole }
}

export async function startServers(): Promise<SoakServers> {
  const uploads = new Map<number, UploadSeen>()
  const started = new Set<number>()

  const tcp = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    let head = Buffer.alloc(0)
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d])
      const nl = head.indexOf(10)
      if (nl < 0) {
        if (head.length > 200) s.resetAndDestroy()
        return
      }
      s.off('data', onData)
      s.pause()
      const words = head.subarray(0, nl).toString('latin1').split(' ')
      const rest = head.subarray(nl + 1)
      if (words[0] === 'D' && words.length === 3) {
        s.resume() // ignore anything else the client sends
        void pump(new ByteSource(Number(words[1]), Number(words[2])), s).catch(() => {})
        return
      }
      if (words[0] === 'U' && words.length === 5) {
        const [id, size, seed] = [Number(words[1]), Number(words[2]), Number(words[3])]
        started.add(id)
        if (rest.length > 0) s.unshift(rest)
        void readPaced(s, paceOf(words[4]!)).then((r) => {
          const seen = judge(r, size, seed)
          uploads.set(id, seen)
          if (r.ending !== 'end') s.resetAndDestroy()
          else s.end(`${seen.whole ? 'OK' : 'BAD'} ${r.bytes} ${r.sha256}`)
        })
        s.resume()
        return
      }
      s.resetAndDestroy()
    }
    s.on('data', onData)
  })
  const tcpSockets = tracked(tcp)

  const http = createHttpServer((req, res) => {
    const m = /^\/blob\/(\d+)\/(\d+)$/.exec(req.url ?? '')
    if (req.method === 'GET' && m !== null) {
      const size = Number(m[1])
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
      void pump(new ByteSource(size, Number(m[2])), res).catch(() => {})
      return
    }
    if (req.method === 'POST' && req.url === '/upload') {
      const id = Number(req.headers['x-id'])
      const size = Number(req.headers['x-size'])
      const seed = Number(req.headers['x-seed'])
      started.add(id)
      void readPaced(req, paceOf(String(req.headers['x-pace'] ?? 'fast'))).then((r) => {
        const seen = judge(r, size, seed)
        uploads.set(id, seen)
        if (r.ending !== 'end') return void req.socket.resetAndDestroy()
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`${seen.whole ? 'OK' : 'BAD'} ${r.bytes} ${r.sha256}`)
      })
      return
    }
    res.writeHead(404).end('not found')
  })
  http.keepAliveTimeout = 5_000
  const httpSockets = tracked(http as unknown as Server)

  const [tcpPort, httpPort] = await Promise.all([listen(tcp), listen(http as unknown as Server)])
  return {
    tcpPort,
    httpPort,
    uploads,
    started,
    kill(which) {
      const set = which === 'tcp' ? tcpSockets : httpSockets
      const n = set.size
      for (const s of set) s.resetAndDestroy()
      return n
    },
    async close() {
      for (const s of [...tcpSockets, ...httpSockets]) s.destroy()
      await Promise.all([
        new Promise((r) => tcp.close(r)),
        new Promise((r) => {
          http.closeAllConnections()
          http.close(r)
        }),
      ])
    },
  }
}
