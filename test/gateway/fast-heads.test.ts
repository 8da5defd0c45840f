/**
 * The fast path's one-pass head rewriting gives the same headers as the full path's chain of functions
 * (forward-headers.ts, Gateway.upstreamHeaders, rewriteLocation).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { clientResponseHead, upstreamRequestHead } from '../../src/gateway/fast/heads.ts'
import { rewriteLocation } from '../../src/gateway/gateway.ts'
import {
  addForwarded,
  type RawHeaders,
  requestHead,
  responseHeaders,
  setHeader,
  stripHopByHop,
} from '../../src/http/forward-headers.ts'

const requests: RawHeaders[] = [
  ['Host', '127.0.0.1:4780'],
  ['host', 'a b', 'User-Agent', 'wrk', 'Accept', '*/*'],
  [
    'Host',
    'x',
    'Connection',
    'keep-alive, X-Secret',
    'X-Secret',
    '1',
    'Keep-Alive',
    'timeout=5',
    'TE',
    'trailers',
    'Proxy-Authorization',
    'Basic abc',
    'X-Forwarded-For',
    '10.0.0.1',
    'Forwarded',
    'for=10.0.0.1',
    'X-Forwarded-Proto',
    'https',
    'X-Forwarded-Host',
    'evil',
    'X-Forwarded-Prefix',
    '/p',
    'Content-Length',
    '5',
    'X-Warren-Peer',
    'forged',
  ],
]

/** Header lines of a head, without its first line. */
function lines(head: string): string[] {
  return head.split('\r\n').slice(1, -2)
}

describe('fast path head rewriting', () => {
  for (const [k, raw] of requests.entries()) {
    for (const prefix of ['/http/n1/web', undefined]) {
      for (const ip of ['127.0.0.1', '::1']) {
        it(`request ${k}, prefix ${prefix}, client ${ip}: the same as the full path`, () => {
          const clientHost = raw[raw.findIndex((h) => h.toLowerCase() === 'host') + 1]!
          let want = stripHopByHop(raw, {})
          want = addForwarded(want, { clientIp: ip, host: clientHost, proto: 'http' })
          want = setHeader(want, 'Host', 'web.abc.warren')
          if (prefix !== undefined) want = setHeader(want, 'X-Forwarded-Prefix', prefix)
          const got = upstreamRequestHead(raw, {
            method: 'POST',
            path: '/x?y=1',
            clientIp: ip,
            clientHost,
            host: 'web.abc.warren',
            prefix,
            chunked: false,
          })
          assert.equal(got, requestHead('POST', '/x?y=1', want))
        })
      }
    }
  }

  it('a chunked request body is announced again (Transfer-Encoding is hop-by-hop)', () => {
    const got = upstreamRequestHead(['Host', 'h', 'Transfer-Encoding', 'chunked'], {
      method: 'PUT',
      path: '/',
      clientIp: '127.0.0.1',
      clientHost: 'h',
      host: 'web.abc.warren',
      prefix: undefined,
      chunked: true,
    })
    assert.deepEqual(
      lines(got).filter((l) => /^transfer-encoding/i.test(l)),
      ['Transfer-Encoding: chunked'],
    )
  })

  const responses: RawHeaders[] = [
    ['Content-Type', 'text/plain', 'Content-Length', '13', 'Date', 'Sun, 22 Nov 2026 07:00:00 GMT'],
    ['Location', '/login?x=1', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'Keep-Alive', 'timeout=5'],
    ['Location', '//other/x', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'],
    ['Location', 'http://elsewhere/x', 'Trailer', 'X-T', 'Upgrade', 'h2c'],
  ]
  for (const [k, raw] of responses.entries()) {
    it(`response ${k}: the full path's headers plus Date and keep-alive`, () => {
      const want = rewriteLocation(responseHeaders(raw), '/http/n1/web')
      const got = lines(
        clientResponseHead(raw, {
          status: 302,
          reason: 'Found',
          prefix: '/http/n1/web',
          date: 'D',
          chunk: false,
          close: false,
          keepAliveSec: 30,
        }),
      )
      const pairs: string[] = []
      for (let i = 0; i < want.length; i += 2) pairs.push(`${want[i]}: ${want[i + 1]}`)
      const extra = raw.some((h) => h.toLowerCase() === 'date') ? [] : ['Date: D']
      assert.deepEqual(got, [...pairs, ...extra, 'Connection: keep-alive', 'Keep-Alive: timeout=30'])
    })
  }

  it('a close-delimited body goes out chunked; Connection: close when the client asked for it', () => {
    const got = clientResponseHead(['Content-Type', 'text/plain'], {
      status: 200,
      reason: 'OK',
      prefix: undefined,
      date: 'D',
      chunk: true,
      close: true,
      keepAliveSec: 30,
    })
    assert.equal(
      got,
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nDate: D\r\nConnection: close\r\n\r\n',
    )
  })
})
