/**
 * Malformed requests to the Delegated Routing V1 endpoint, sent as raw bytes over TCP: every one is a 400 with a
 * message saying what is wrong (never a 500), and the log stays bounded however many arrive. Against a real relay's
 * endpoint, and against the server alone for the exact log lines.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { startRoutingHttp } from '../../src/discovery/routing-http.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { startTestRelay } from '../support/nodes.ts'

interface RawAnswer {
  status: string
  headers: string[]
  body: string
}

/** Writes `request` on a new TCP connection and reads until the server closes it. */
function raw(port: number, request: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')))
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const split = text.indexOf('\r\n\r\n')
      const head = (split === -1 ? text : text.slice(0, split)).split('\r\n')
      resolve({ status: head[0] ?? '', headers: head.slice(1), body: split === -1 ? '' : text.slice(split + 4) })
    })
    socket.end(request)
  })
}

const get = (target: string | Buffer): Buffer =>
  Buffer.concat([
    Buffer.from('GET '),
    Buffer.from(target),
    Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
  ])

const USE = 'use GET /routing/v1/peers/<peer id>'
const NOT_ID = 'is neither a base58 peer id (12D3KooW…) nor a CIDv1 peer id (k51…, bafz…)'
const LONG = `/routing/v1/peers/${'a'.repeat(4_000)}`

/** Malformed requests and the exact body of their 400. */
const MALFORMED: Array<[string, string | Buffer, string]> = [
  [
    'bad percent-encoding',
    get('/routing/v1/peers/%zz'),
    'the path "/routing/v1/peers/%zz" is not valid percent-encoding (a % must be followed by two hex digits)',
  ],
  ['a lone %', get('/%'), 'the path "/%" is not valid percent-encoding (a % must be followed by two hex digits)'],
  [
    'percent-encoded bytes that are not UTF-8',
    get('/routing/v1/peers/%C3'),
    'the peer id in "/routing/v1/peers/%C3" is not percent-encoded UTF-8',
  ],
  ['an encoded NUL', get('/routing/v1/peers/%00'), `"\\u0000" ${NOT_ID}`],
  ['//x', get('//x'), 'the path "//x" has an empty segment (//)'],
  ['//', get('//'), 'the path "//" has an empty segment (//)'],
  ['//[', get('//['), 'the path "//[" has an empty segment (//)'],
  [
    'an absolute URL with a bad host',
    get('http://[bad/'),
    `the request target "http://[bad/" is not a valid URL: ${USE}`,
  ],
  ['an absolute URL with a bad id', get('http://relay.example/routing/v1/peers/x'), `"x" ${NOT_ID}`],
  ['an asterisk', get('*'), `the request target "*" is neither a path nor an http:// URL: ${USE}`],
  [
    'a path of 4018 bytes',
    get(LONG),
    'the request target is 4018 bytes long; this server takes at most 2048 (GET /routing/v1/peers/<peer id>)',
  ],
  ['a path of 20000 bytes', get(`/${'a'.repeat(20_000)}`), 'the request line and headers are longer than 16 KiB'],
  [
    'raw non-ASCII',
    get(Buffer.from('/routing/v1/peers/é', 'utf8')),
    'the request target is not a valid URL (only printable ASCII; percent-encode the rest)',
  ],
  [
    'raw Latin-1',
    get(Buffer.from([0x2f, 0xff, 0xfe])),
    'the request target is not a valid URL (only printable ASCII; percent-encode the rest)',
  ],
  ['not HTTP', 'HELLO\r\n\r\n', 'the request is not valid HTTP/1.1 (HPE_INVALID_METHOD)'],
  ['a bad header', 'GET / HTTP/1.1\r\nHost x\r\n\r\n', 'the request is not valid HTTP/1.1 (HPE_INVALID_HEADER_TOKEN)'],
]

/** How many malformed requests the log lines account for: one per line, plus the counts of the summaries. */
function accountedFor(lines: string[]): number {
  let n = 0
  for (const l of lines) {
    if (l.startsWith('warn delegated routing: refused a malformed request from 127.0.0.1: ')) n++
    const more =
      /^warn delegated routing: (\d+) more malformed requests refused in the last 10 s \(not logged one by one\)$/.exec(
        l,
      )
    if (more !== null) n += Number(more[1])
  }
  return n
}

describe('delegated routing: malformed requests (raw sockets)', () => {
  it('a relay answers every malformed request with a 400 that says what is wrong, and logs them bounded', async () => {
    const relay = await startTestRelay({ routing: { host: '127.0.0.1', port: 0 } })
    const port = Number(new URL(relay.status().routing!.url).port)
    let sent = 0
    try {
      for (let round = 0; round < 5; round++) {
        for (const [what, request, body] of MALFORMED) {
          const answer = await raw(port, request)
          sent++
          assert.equal(answer.status, 'HTTP/1.1 400 Bad Request', what)
          assert.equal(answer.body, `${body}\n`, what)
          assert.ok(answer.headers.includes('Content-Type: text/plain; charset=utf-8'), `${what}: ${answer.headers}`)
        }
      }
      // the absolute form is HTTP/1.1 (RFC 9112): a well-formed one is served
      const unknown = peerIdFromPrivateKey(await generateNodeKey()).toString()
      const ok = await raw(port, get(`http://relay.example/routing/v1/peers/${unknown}`))
      assert.equal(ok.status, 'HTTP/1.1 200 OK')
      assert.equal(ok.body, '{"Peers":[]}')
    } finally {
      await relay.stop() // logs what is still only counted
    }
    const lines = relay.lines.filter((l) => l.includes('delegated routing:'))
    // a bad peer id in a well-formed request is an ordinary 400, not logged; every other request above is
    const logged = MALFORMED.filter(([, , body]) => !body.endsWith(NOT_ID)).length * 5
    assert.equal(logged, sent - 10)
    assert.equal(accountedFor(lines), logged, lines.join('\n'))
    // each 10-s window writes at most two lines: far fewer than requests
    assert.ok(lines.length < sent / 4, `${lines.length} lines for ${sent} requests:\n${lines.join('\n')}`)
  })

  it('logs the first malformed request and then one count per interval; failed lookups are 500s, logged the same way', async () => {
    const lines: string[] = []
    const id = peerIdFromPrivateKey(await generateNodeKey()).toString()
    let fail = false
    const server = await startRoutingHttp({
      host: '127.0.0.1',
      port: 0,
      find: async () => {
        if (fail) throw new Error('the DHT is not ready')
        return []
      },
      log: (level, message) => lines.push(`${level} ${message}`),
      logIntervalMs: 3_600_000,
    })
    try {
      for (let i = 0; i < 50; i++)
        assert.equal((await raw(server.port, get(`//x${i}`))).status, 'HTTP/1.1 400 Bad Request')
      assert.deepEqual(lines, [
        'warn delegated routing: refused a malformed request from 127.0.0.1: the path "//x0" has an empty segment (//)',
      ])
      fail = true
      for (let i = 0; i < 3; i++) {
        const answer = await raw(server.port, get(`/routing/v1/peers/${id}`))
        assert.equal(answer.status, 'HTTP/1.1 500 Internal Server Error')
        assert.equal(answer.body, 'lookup failed: the DHT is not ready\n')
      }
    } finally {
      await server.close()
    }
    assert.deepEqual(lines, [
      'warn delegated routing: refused a malformed request from 127.0.0.1: the path "//x0" has an empty segment (//)',
      `warn delegated routing: "/routing/v1/peers/${id}": the DHT is not ready`,
      'warn delegated routing: 49 more malformed requests refused in the last 3600 s (not logged one by one)',
      'warn delegated routing: 2 more lookups failed in the last 3600 s (not logged one by one)',
    ])
  })
})
