/**
 * Bytes a client sends together with its tunnel handshake. SOCKS5 clients may write the greeting, the CONNECT
 * request and the first data at once, and HTTP CONNECT clients the data right behind the head; a short request
 * written with its FIN (`printf … | nc -N` through a proxy) comes in one segment. Every byte must reach the service
 * and the FIN after them: a hashing TCP service answers `<bytes> <sha256>` once it has read to the end, and the
 * client compares it with what it sent (sizes from none to 3 MB, the FIN in the same write or after a pause).
 *
 * And a SOCKS5 client that ends its connection in the middle of the handshake is let go at once, not at the
 * handshake deadline.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { pace, pacedHashServer } from '../support/transfer.ts'

const NAME = Buffer.from('sink.a.warren')
const SOCKS_HANDSHAKE = Buffer.concat([
  Buffer.from([5, 1, 0]), // greeting: version 5, one method, no authentication
  Buffer.from([5, 1, 0, 3, NAME.length]), // CONNECT to a domain name
  NAME,
  Buffer.from([0, 80]),
])
const SOCKS_SUCCESS = Buffer.from([5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0]) // method chosen, then the success reply
const CONNECT_HEAD = 'CONNECT sink.a.warren:80 HTTP/1.1\r\nHost: sink.a.warren:80\r\n\r\n'
const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n'

const hashOf = (b: Buffer): string => `${b.length} ${createHash('sha256').update(b).digest('hex')}`

/** Connects to the access port; resolves with everything received once it closes, and how it closed. */
function exchange(access: string, write: (s: Socket) => Promise<void>): Promise<{ got: Buffer; error?: string }> {
  const i = access.lastIndexOf(':')
  const s = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)), allowHalfOpen: true })
  const chunks: Buffer[] = []
  let error: string | undefined
  s.on('data', (d: Buffer) => chunks.push(d))
  s.on('error', (e) => {
    error = e.message
  })
  const timer = setTimeout(() => s.destroy(new Error('no close within 10 s')), 10_000)
  return Promise.all([once(s, 'close'), write(s)]).then(() => {
    clearTimeout(timer)
    return { got: Buffer.concat(chunks), ...(error === undefined ? {} : { error }) }
  })
}

describe('bytes sent with a tunnel handshake reach the service, and the FIN after them', () => {
  let pair: DaemonPair
  let sink: { port: number; close(): Promise<void> }
  before(async () => {
    sink = await pacedHashServer(pace.fast)
    pair = await startDaemonPair({ sink: `/tcp/${sink.port}` })
  })
  after(async () => {
    await pair?.close()
    await sink?.close()
  })

  for (const [proto, handshake, answer] of [
    ['SOCKS5', SOCKS_HANDSHAKE, SOCKS_SUCCESS],
    ['HTTP CONNECT', Buffer.from(CONNECT_HEAD), Buffer.from(ESTABLISHED)],
  ] as const) {
    for (const size of [0, 1, 1000, 100_000, 3_000_000]) {
      it(`${proto}: ${size} bytes and the FIN in the handshake's write`, async () => {
        const data = randomBytes(size)
        const { got, error } = await exchange(pair.fast, async (s) => {
          s.end(Buffer.concat([handshake, data]))
        })
        assert.equal(error, undefined)
        assert.equal(got.subarray(0, answer.length).toString('latin1'), answer.toString('latin1'))
        assert.equal(got.subarray(answer.length).toString(), hashOf(data))
      })
    }

    it(`${proto}: data in the handshake's write, more and the FIN after a pause`, async () => {
      const first = randomBytes(500)
      const rest = randomBytes(200_000)
      const { got, error } = await exchange(pair.fast, async (s) => {
        s.write(Buffer.concat([handshake, first]))
        await sleep(200)
        s.end(rest)
      })
      assert.equal(error, undefined)
      assert.equal(got.subarray(answer.length).toString(), hashOf(Buffer.concat([first, rest])))
    })
  }

  it('SOCKS5: a greeting with no methods, then a request and the FIN, gets its answer and a close', async () => {
    const { got, error } = await exchange(pair.fast, async (s) => {
      s.end(Buffer.from([5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0]))
    })
    assert.equal(error, undefined)
    assert.deepEqual([...got], [5, 0xff], 'no acceptable method')
  })

  it('SOCKS5: a client that ends in the middle of its request is let go at once', async () => {
    // the handshake deadline (proxy.headersTimeoutMs) is 30 s, past exchange()'s 10 s: a close before that came
    // with the client's FIN
    const { got, error } = await exchange(pair.fast, async (s) => {
      s.end(SOCKS_HANDSHAKE.subarray(0, 6)) // the greeting and half of the request
    })
    assert.equal(error, undefined)
    assert.deepEqual([...got], [5, 0], 'only the method reply')
  })
})
