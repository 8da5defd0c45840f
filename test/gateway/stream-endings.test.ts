/**
 * What the gateway does with a service stream when the client or the service goes first, on both paths (`b` with
 * the fast path, `c` with the full path only), real daemons and a keep-alive service (http-chaos.ts):
 *
 * - a client that sends its request and then its FIN before any response began has gone (as Node's HTTP server and
 *   nginx take it): its connection is closed at once, and the request is abandoned at the service, never held
 *   until the response time-out;
 * - a service that ends its response with its FIN (a close-delimited body), or closes mid-body: the stream ends on
 *   both nodes and the service's connection closes, never left half open;
 * - close-delimited responses of every size through the full path arrive whole, and the daemon lives: undici 7.30.3
 *   would end the process when such a response's end comes while its parser waits for a slow consumer
 *   (UPSTREAM.md).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { WarrenClient } from '../../src/client/client.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { type HttpChaos, httpChaos } from '../support/http-chaos.ts'
import { ByteSource } from '../support/transfer.ts'

const KiB = 1024

/** Sends `head` on a new connection to `access` (with a FIN after it when `fin`); what came back and how it ended. */
function exchange(access: string, head: string, fin: boolean): Promise<{ text: string; body: Buffer; ending: string }> {
  const i = access.lastIndexOf(':')
  return new Promise((resolve) => {
    const s = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)), allowHalfOpen: true })
    const chunks: Buffer[] = []
    let ending = 'closed'
    s.on('connect', () => (fin ? s.end(head) : s.write(head)))
    s.on('data', (d: Buffer) => chunks.push(d))
    s.on('end', () => {
      ending = 'end'
      s.end()
    })
    s.on('error', (err: Error & { code?: string }) => {
      ending = err.code ?? err.message
    })
    s.on('close', () => {
      const all = Buffer.concat(chunks)
      const at = all.indexOf('\r\n\r\n')
      resolve({
        text: all.subarray(0, at < 0 ? all.length : at).toString('latin1'),
        body: all.subarray(at + 4),
        ending,
      })
    })
  })
}

/** Decodes a chunked body (the gateway sends a close-delimited one chunked). */
function dechunk(body: Buffer): Buffer {
  const out: Buffer[] = []
  let at = 0
  for (;;) {
    const eol = body.indexOf('\r\n', at)
    const n = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16)
    if (!(n > 0)) return Buffer.concat(out)
    out.push(body.subarray(eol + 2, eol + 2 + n))
    at = eol + 2 + n + 2
  }
}

describe('the gateway ends its service stream when the client or the service goes first', () => {
  let pair: DaemonPair
  let target: HttpChaos
  let a: WarrenClient
  let clients: WarrenClient[] = []
  before(async () => {
    target = await httpChaos()
    pair = await startDaemonPair({ web: `/tcp/${target.port}` }, true)
    a = await pair.a.client()
    clients = [await pair.b.client(), await pair.c!.client()]
  })
  after(async () => {
    for (const c of clients) c.close()
    a?.close()
    await pair?.close()
    await target?.close()
  })

  /**
   * Nothing held: no request pending at the service, no connection it ended left half open, every stream at the
   * serving node one of the service's connections (idle ones stay in the gateway's pool for their idle time), and
   * the clients' daemons holding just those streams too (so that each stream that ended is counted on both sides).
   */
  const nothingLeft = (what: string) =>
    eventually(
      async () => {
        const streams = (await a.status()).streams.incoming.active
        const outgoing = (await Promise.all(clients.map((c) => c.status()))).reduce(
          (n, st) => n + st.streams.outgoing.active,
          0,
        )
        const left = { pending: target.pending(), halfClosed: target.halfClosed(), streams, outgoing }
        assert.deepEqual(left, { pending: 0, halfClosed: 0, streams: target.open(), outgoing: target.open() })
        return true
      },
      { timeoutMs: 10_000, message: what },
    )

  for (const path of ['fast', 'full'] as const) {
    const access = (): string => (path === 'fast' ? pair.fast : pair.full)

    it(`${path} path: a request, then the client's FIN before any response: closed at once, nothing held`, async () => {
      const started = Date.now()
      const requests = await Promise.all(
        Array.from({ length: 8 }, () =>
          exchange(access(), `GET /http/a/web/hang HTTP/1.1\r\nHost: ${access()}\r\n\r\n`, true),
        ),
      )
      for (const r of requests) assert.equal(r.text, '', 'no response to a client that has gone')
      assert.ok(Date.now() - started < 30_000, 'closed well before the 60-s response time-out')
      await nothingLeft('the abandoned requests let go on both nodes and at the service')
    })

    for (const size of [10 * KiB, 100 * KiB, 1024 * KiB]) {
      it(`${path} path: a close-delimited response of ${size / KiB} KiB arrives whole, ends cleanly, nothing left open`, async () => {
        const client = await pair[path === 'fast' ? 'b' : 'c']!.client()
        const failures = async (): Promise<number> => {
          const ends = (await client.status()).traffic.outgoing.total.ends
          return (ends.reset ?? 0) + (ends.error ?? 0)
        }
        try {
          const failedBefore = await failures()
          const r = await exchange(
            access(),
            `GET /http/a/web/closed/${size}/5 HTTP/1.1\r\nHost: ${access()}\r\nConnection: close\r\n\r\n`,
            false,
          )
          assert.match(r.text, /^HTTP\/1\.1 200 /)
          assert.match(r.text, /\r\ntransfer-encoding: chunked/i)
          assert.equal(createHash('sha256').update(dechunk(r.body)).digest('hex'), ByteSource.digest(size, 5))
          assert.equal(pair[path === 'fast' ? 'b' : 'c']!.child.exitCode, null, 'the daemon still runs')
          await nothingLeft('the stream of a close-delimited response ended on both nodes')
          // a normal end, not counted (nor logged) as a failure: a FIN, not a reset
          assert.equal(await failures(), failedBefore, 'no stream counted as reset or failed')
        } finally {
          client.close()
        }
      })
    }

    it(`${path} path: a response the service cuts with its FIN mid-body: cut for the client, nothing left open`, async () => {
      const r = await exchange(
        access(),
        `GET /http/a/web/cut/${256 * KiB}/${64 * KiB}/fin HTTP/1.1\r\nHost: ${access()}\r\n\r\n`,
        false,
      )
      assert.match(r.text, /^HTTP\/1\.1 200 /)
      assert.ok(r.body.length < 256 * KiB, `the client got ${r.body.length} bytes of ${256 * KiB}`)
      await nothingLeft('the stream of a cut response ended on both nodes')
    })
  }
})
