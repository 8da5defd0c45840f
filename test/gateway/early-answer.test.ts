/**
 * A service that answers before the request body is through (`413 Payload Too Large` as soon as the head came) and
 * then closes its connection, with a FIN or a reset, while the client is still uploading 20 MiB with a
 * Content-Length. Through both paths of the gateway, to a TCP service and to a `"type": "http"` one (whose
 * serving node carries HTTP itself): the client must get the whole 413 and must never be left stuck writing the
 * rest of its body. Either the rest is read and dropped (the full path keeps the connection for the next request)
 * or the connection is closed after the response (the fast path). Afterwards the service holds no connection, and
 * every stream on the serving node is one a client's node holds (idle in its gateway's pool); the next request gets
 * its own answer. Real daemons, a real service and raw sockets.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { useTargetPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { drained, listen } from '../support/transfer.ts'

const MiB = 1024 * 1024
const UPLOAD = 20 * MiB
const ANSWER = 'HTTP/1.1 413 Payload Too Large\r\nContent-Length: 5\r\nConnection: close\r\n\r\nlarge'

/** A service that answers 413 when a head has come, then ends (`/fin`) or resets (`/rst`) its connection. */
function earlyService() {
  return listen(
    createServer((s) => {
      let head = ''
      s.on('error', () => {})
      const onData = (d: Buffer): void => {
        head += d.toString('latin1')
        if (!head.includes('\r\n\r\n')) return
        s.off('data', onData)
        s.resume()
        if (/^\w+ \/rst /.test(head)) {
          s.write(ANSWER)
          setTimeout(() => s.resetAndDestroy(), 50)
        } else s.end(ANSWER)
      }
      s.on('data', onData)
    }),
  )
}

interface Upload {
  /** What came back, as text. */
  answer: string
  written: number
  /** The gateway closed the connection (after the answer). */
  closed: boolean
  /** Every byte of the body was taken. */
  taken: boolean
}

/** True at `s`'s next 'drain', 'end' or 'close'; false after `ms` without one. */
function drainedOrEnded(s: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (v: boolean) => (): void => {
      clearTimeout(timer)
      for (const e of ['drain', 'end', 'close']) s.off(e, yes)
      resolve(v)
    }
    const yes = done(true)
    const timer = setTimeout(done(false), ms)
    for (const e of ['drain', 'end', 'close']) s.once(e, yes)
  })
}

/** Uploads UPLOAD bytes to `path` through `access`; stops when the connection closes or the body was all taken. */
async function upload(access: string, path: string): Promise<Upload> {
  const port = Number(access.slice(access.lastIndexOf(':') + 1))
  const s = connect({ port, host: '127.0.0.1' })
  s.on('error', () => {})
  let answer = ''
  s.on('data', (d: Buffer) => {
    answer += d.toString('latin1')
  })
  let closed = false
  s.once('close', () => {
    closed = true
  })
  await once(s, 'connect')
  s.write(`POST ${path} HTTP/1.1\r\nHost: ${access}\r\nContent-Length: ${UPLOAD}\r\n\r\n`)
  const piece = Buffer.alloc(64 * 1024, 1)
  let written = 0
  let stuck = false
  while (written < UPLOAD && !closed && !s.writableEnded && !stuck) {
    const room = s.write(piece)
    written += piece.length
    // held up for 10 s with the answer in: the client is stuck (a FIN from the gateway ends the wait: the client
    // ends its side then, and a stream that is ending emits no 'drain')
    if (!room) stuck = !(await drainedOrEnded(s, 10_000)) && !s.writableEnded
  }
  const taken = written >= UPLOAD && !stuck && !closed && (s.writableLength === 0 || (await drained(s, 10_000)))
  if (!taken) await eventually(() => closed, { timeoutMs: 10_000, message: `the connection stayed open (${answer})` })
  s.destroy()
  return { answer, written, closed, taken }
}

describe('a service that answers before the request body is through, then closes', () => {
  const ends = useTargetPair(earlyService)

  for (const path of ['fast', 'full'] as const) {
    for (const service of ['web', 'hweb'] as const) {
      for (const how of ['fin', 'rst'] as const) {
        it(`${path} path, service "${service}", ${how}: the whole 413, and the client is not left writing`, async () => {
          const [pair, target] = [ends.pair(), ends.target()]
          const access = path === 'fast' ? pair.fast : pair.full
          const got = await upload(access, `/http/a/${service}/${how}`)
          assert.match(got.answer, /^HTTP\/1\.1 413 Payload Too Large\r\n/)
          assert.ok(got.answer.endsWith('\r\n\r\nlarge'), JSON.stringify(got.answer))
          assert.ok(got.closed || got.taken, JSON.stringify(got))
          // the service closed each of its connections; every stream left on the serving node is one a client's node
          // still holds (idle in its gateway's pool), none is half open on one side only
          const settled = async (): Promise<void> => {
            const [a, b, c] = await Promise.all([pair.a.client(), pair.b.client(), pair.c!.client()])
            try {
              await eventually(
                async () => {
                  const [sa, sb, sc] = await Promise.all([a.status(), b.status(), c.status()])
                  const open = { served: sa.streams.incoming.active, held: sb.streams.active + sc.streams.active }
                  assert.ok(open.served === open.held && target.sockets.size === 0, JSON.stringify(open))
                  return true
                },
                { message: 'every stream on the serving node held by a client node; no connection to the service' },
              )
            } finally {
              for (const x of [a, b, c]) x.close()
            }
          }
          await settled()
          const next = await upload(access, `/http/a/${service}/fin`)
          assert.match(next.answer, /^HTTP\/1\.1 413 /)
          await settled()
        })
      }
    }
  }
})
