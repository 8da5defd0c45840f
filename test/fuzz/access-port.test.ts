/**
 * Fuzzing the access port over real sockets (src/access/socks5.ts and the HTTP proxy/gateway heads, both read
 * through the real server of a real node): mutated SOCKS5 handshakes and HTTP request heads, each sent and
 * half-closed. Every connection ends (no hang) with a SOCKS5 reply or an HTTP response or nothing; afterwards the
 * port still carries a request end to end, checked by SHA-256.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { socks5Connect } from '../support/access-clients.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'
import { count, fuzzAsync, nastyString } from './fuzz-kit.ts'

/** Bound on one fuzz connection: a connection still open after this is a hang and fails the property. */
const HANG_MS = 20_000

/** Sends `bytes`, half-closes, and resolves with everything the port sent back once it closed. */
function exchange(access: string, bytes: Buffer): Promise<Buffer> {
  const i = access.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const s = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)), allowHalfOpen: true })
    const got: Buffer[] = []
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`the access port kept the connection open for ${HANG_MS} ms after the client's FIN`))
    }, HANG_MS)
    s.on('data', (d: Buffer) => got.push(d))
    s.on('error', () => {}) // a reset is an answer too
    s.on('close', () => {
      clearTimeout(timer)
      resolve(Buffer.concat(got))
    })
    s.end(bytes)
  })
}

const byte = fc.integer({ min: 0, max: 255 })
/** undefined four times in five, else a value. */
const rarely = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a })
const u16 = (n: number) => [n >> 8, n & 0xff]

/** SOCKS5 handshakes: the structure with every field drawn from likely and unlikely values, then mutated. */
const socksBytes = fc
  .record({
    methods: fc.oneof(fc.constant([0]), fc.array(byte, { maxLength: 4 })),
    nMethodsLies: fc.boolean(),
    ver: fc.constantFrom(5, 5, 5, 4, 0),
    cmd: fc.constantFrom(1, 1, 1, 2, 3, 0, 9),
    atyp: fc.constantFrom(1, 3, 3, 3, 4, 0, 7),
    domain: fc.oneof(
      fc.constantFrom(
        'web.n1.warren',
        'nope.n1.warren',
        'web.ghost.warren',
        'example.com',
        'n1.warren',
        'WEB.N1.WARREN',
      ),
      nastyString(['web', '.', 'n1', 'warren', '\0', '..']),
    ),
    ip4: fc.tuple(byte, byte, byte, byte),
    ip6: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    port: fc.integer({ min: 0, max: 65535 }),
    tail: fc.uint8Array({ maxLength: 20 }),
    cut: rarely(fc.nat()),
    edits: fc.oneof(fc.constant([]), fc.array(fc.tuple(fc.nat(), byte), { maxLength: 2 })),
  })
  .map((r) => {
    const hello = [5, r.nMethodsLies ? (r.methods.length + 3) & 0xff : r.methods.length, ...r.methods]
    const name = Buffer.from(r.domain, 'latin1').subarray(0, 255)
    const addr =
      r.atyp === 1 ? r.ip4 : r.atyp === 3 ? [name.length, ...name] : r.atyp === 4 ? [...r.ip6] : [...r.tail.slice(0, 4)]
    const b = Buffer.from([...hello, r.ver, r.cmd, 0, r.atyp, ...addr, ...u16(r.port), ...r.tail])
    for (const [at, v] of r.edits) if (at % b.length !== 0) b[at % b.length] = v // keep the leading 0x05
    return r.cut === undefined ? b : b.subarray(0, 1 + (r.cut % b.length))
  })

/** HTTP request heads for the proxy and gateway: request lines, targets and headers, well-formed or not. */
const httpBytes = fc
  .record({
    method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'CONNECT', 'HEAD', 'PUT', 'get', 'G ET', ''),
    target: fc.oneof(
      fc.constantFrom(
        '/http/n1/web/echo',
        '/http/n1/web/hash',
        '/http/n1/nope/',
        '/http/ghost/web/',
        '/p2p/n1/x/web/http/echo',
        '/p2p/n1/http/',
        'http://web.n1.warren/echo',
        'http://example.com/',
        'web.n1.warren:80',
        '/proxy.pac',
        '/',
        '*',
      ),
      nastyString(['/http/', '/p2p/', 'n1', 'web', '%', '%zz', '?', '/', 'http://', '.warren', ':80']),
    ),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1', 'HTTP/1.1', ''),
    headers: fc.array(
      fc.oneof(
        fc.constantFrom(
          'Host: web.n1.warren',
          'Host: ',
          'Content-Length: 5',
          'Content-Length: -1',
          'Content-Length: 99999999999',
          'Transfer-Encoding: chunked',
          'Transfer-Encoding: gzip, chunked',
          'Connection: close, x-a',
          'Upgrade: websocket',
          'Proxy-Authorization: Basic !!!',
          'Expect: 100-continue',
          'X-Warren-Peer: forged',
        ),
        fc.tuple(fc.stringMatching(/^[!-9;-~]{1,12}$/), fc.string({ maxLength: 20 })).map(([n, v]) => `${n}: ${v}`),
      ),
      { maxLength: 6 },
    ),
    body: fc.oneof(
      fc.constant(''),
      fc.constant('hello'),
      fc.constant('5\r\nhello\r\n0\r\n\r\n'),
      fc.string({ maxLength: 30 }),
    ),
    lineEnd: fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r'),
    cut: rarely(fc.nat()),
  })
  .map((r) => {
    const head = [`${r.method} ${r.target} ${r.version}`, ...r.headers].join(r.lineEnd) + r.lineEnd + r.lineEnd
    const b = Buffer.from(head + r.body, 'latin1')
    const out = r.cut === undefined ? b : b.subarray(0, 1 + (r.cut % b.length))
    return out[0] === 5 ? Buffer.concat([Buffer.from('X'), out]) : out // a leading 0x05 would be SOCKS
  })

describe('fuzz: the access port over real sockets', () => {
  let p: Pair
  before(async () => {
    p = await startPair()
  })
  after(async () => {
    await p?.stop()
  })

  it('SOCKS5: any handshake ends in a reply or a close, never a hang', async () => {
    const outcomes = new Map<string, number>()
    await fuzzAsync(
      'access port socks5',
      socksBytes,
      async (b) => {
        const out = await exchange(p.access, b)
        if (out.length > 0) assert.equal(out[0], 5, `a SOCKS5 answer starts with version 5: ${out.toString('hex')}`)
        // method selection (2 bytes), then the reply to the request: its code
        count(outcomes, out.length === 0 ? 'closed' : out.length <= 2 ? `method ${out[1]}` : `reply ${out[3]}`)
      },
      { runs: 40, kind: 'socket', outcomes },
    )
  })

  it('HTTP: any request head ends in a response or a close, never a hang', async () => {
    const outcomes = new Map<string, number>()
    await fuzzAsync(
      'access port http',
      httpBytes,
      async (b) => {
        const out = await exchange(p.access, b)
        if (out.length > 0) assert.match(out.subarray(0, 9).toString('latin1'), /^HTTP\/1\.[01] /)
        count(outcomes, out.length === 0 ? 'closed' : out.subarray(9, 12).toString())
      },
      { runs: 40, kind: 'socket', outcomes },
    )
  })

  it('still carries a request end to end afterwards (SHA-256 of the body)', async () => {
    const body = Buffer.alloc(1 << 20)
    for (let i = 0; i < body.length; i++) body[i] = (i * 131 + 17) & 0xff
    const { reply, socket } = await socks5Connect(p.access, { host: 'web.n1.warren', port: 80 })
    assert.equal(reply, 0)
    const answer = await new Promise<string>((resolve, reject) => {
      const got: Buffer[] = []
      socket.on('data', (d: Buffer) => got.push(d))
      socket.on('error', reject)
      socket.on('close', () => resolve(Buffer.concat(got).toString()))
      socket.end(
        Buffer.concat([
          Buffer.from(
            `POST /hash HTTP/1.1\r\nHost: web\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
          ),
          body,
        ]),
      )
    })
    assert.match(answer, /^HTTP\/1\.1 200 /)
    const json = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { bytes: number; sha256: string }
    assert.deepEqual(json, { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') })
  })
})
