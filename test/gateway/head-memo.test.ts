/**
 * The memo of parsed heads (src/http/head-memo.ts) and its use by the fast path's parser (src/http/http1.ts): a head
 * seen before comes back as the same frozen object, bounded in entries and in key length; and the head a connection
 * or a stream sent last comes back when the next one has the same bytes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HeadMemo } from '../../src/http/head-memo.ts'
import { keepAsLast, parseRequestHead, parseResponseHead } from '../../src/http/http1.ts'

describe('HeadMemo', () => {
  it('keeps at most maxEntries, dropping the oldest first', () => {
    const memo = new HeadMemo<number>(3, 100)
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) assert.equal(memo.put(k, i), i)
    assert.equal(memo.size, 3)
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((k) => memo.get(k)),
      [undefined, 1, 2, 3],
    )
  })

  it('does not keep a key longer than maxKeyLength (but returns its value)', () => {
    const memo = new HeadMemo<string>(3, 4)
    assert.equal(memo.put('12345', 'v'), 'v')
    assert.equal(memo.get('12345'), undefined)
    assert.equal(memo.size, 0)
  })
})

describe('parsed heads are shared by their text', () => {
  const request = Buffer.from('GET /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc')
  const response = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Memo-Test: 1\r\n\r\nok')

  it('the same request head gives the same frozen object; another gives another', () => {
    const a = parseRequestHead(Buffer.from(request), 8192)
    const b = parseRequestHead(Buffer.from(request), 8192)
    assert.ok(typeof a === 'object')
    assert.equal(a, b)
    assert.deepEqual(a, {
      method: 'GET',
      target: '/x',
      raw: ['Host', 'gw', 'Content-Length', '3'],
      host: 'gw',
      framing: { kind: 'length', length: 3 },
      close: false,
      size: request.length - 3,
      bytes: request.subarray(0, request.length - 3),
    })
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.raw) && Object.isFrozen(a.framing))
    assert.throws(() => {
      ;(a.raw as string[])[1] = 'evil'
    }, TypeError)
    const other = parseRequestHead(Buffer.from(request.toString().replace('/x', '/y')), 8192)
    assert.ok(typeof other === 'object')
    assert.notEqual(other, a)
    assert.equal(other.target, '/y')
  })

  it('the same response head gives the same frozen object', () => {
    const a = parseResponseHead(Buffer.from(response), 8192)
    assert.equal(parseResponseHead(Buffer.from(response), 8192), a)
    assert.ok(typeof a === 'object' && 'status' in a)
    assert.equal(a.status, 200)
    assert.deepEqual(a.framing, { kind: 'length', length: 2 })
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.raw))
  })

  it('a head of more than 2 KiB is parsed each time, to the same result', () => {
    const long = Buffer.from(`GET /x HTTP/1.1\r\nHost: gw\r\nX-Long: ${'v'.repeat(3000)}\r\n\r\n`)
    const a = parseRequestHead(Buffer.from(long), 16384)
    const b = parseRequestHead(Buffer.from(long), 16384)
    assert.notEqual(a, b)
    assert.deepEqual(a, b)
  })
})

describe('the last head of a connection or a stream', () => {
  const request = Buffer.from('GET /last HTTP/1.1\r\nHost: gw\r\nX-Last: 1\r\n\r\n')
  const response = Buffer.from('HTTP/1.1 200 OK\r\nDate: Sun, 06 Dec 2026 07:00:00 GMT\r\nContent-Length: 2\r\n\r\n')

  it('comes back when the next bytes start with the same head, whatever follows it', () => {
    const last = parseRequestHead(Buffer.from(request), 8192)
    assert.ok(typeof last === 'object')
    const next = Buffer.concat([request, Buffer.from('GET /other HTTP/1.1\r\n')])
    assert.equal(parseRequestHead(next, 8192, last), last)
    const res = parseResponseHead(Buffer.from(response), 8192)
    assert.ok(typeof res === 'object' && 'status' in res)
    assert.equal(parseResponseHead(Buffer.concat([response, Buffer.from('ok')]), 8192, res), res)
  })

  it('is not taken for a head that differs in one byte, or is not complete yet', () => {
    const last = parseRequestHead(Buffer.from(request), 8192)
    assert.ok(typeof last === 'object')
    const other = parseRequestHead(Buffer.from(request.toString().replace('X-Last: 1', 'X-Last: 2')), 8192, last)
    assert.ok(typeof other === 'object')
    assert.notEqual(other, last)
    assert.deepEqual(other.raw, ['Host', 'gw', 'X-Last', '2'])
    assert.equal(parseRequestHead(request.subarray(0, request.length - 1), 8192, last), 'more')
    const res = parseResponseHead(Buffer.from(response), 8192)
    assert.ok(typeof res === 'object' && 'status' in res)
    const later = parseResponseHead(Buffer.from(response.toString().replace('07:00:00', '07:00:01')), 8192, res)
    assert.ok(typeof later === 'object' && 'status' in later)
    assert.notEqual(later, res)
    assert.deepEqual(later.raw, ['Date', 'Sun, 06 Dec 2026 07:00:01 GMT', 'Content-Length', '2'])
  })

  it('is not taken past a smaller size limit', () => {
    const last = parseRequestHead(Buffer.from(request), 8192)
    assert.ok(typeof last === 'object')
    assert.equal(parseRequestHead(Buffer.from(request), request.length - 1, last), 'fallback')
    const res = parseResponseHead(Buffer.from(response), 8192)
    assert.ok(typeof res === 'object' && 'status' in res)
    assert.deepEqual(parseResponseHead(Buffer.from(response), response.length - 1, res), {
      error: 'head-too-large',
      message: 'response head too large',
    })
  })

  it('keeps its bytes in a buffer of their own size, also for a head too long for the memo', () => {
    const long = Buffer.from(`GET /x HTTP/1.1\r\nHost: gw\r\nX-Long: ${'v'.repeat(3000)}\r\n\r\n`)
    const a = parseRequestHead(Buffer.from(long), 16384)
    assert.ok(typeof a === 'object')
    assert.equal(a.bytes.buffer.byteLength, long.length)
    assert.deepEqual(a.bytes, long)
    assert.equal(parseRequestHead(Buffer.from(long), 16384, a), a)
  })

  it('is kept by a connection only up to the size of the memo, so an idle connection holds no long head', () => {
    const at = (n: number): Buffer => {
      const start = 'GET /x HTTP/1.1\r\nHost: gw\r\nX-Pad: '
      return Buffer.from(`${start}${'v'.repeat(n - start.length - 4)}\r\n\r\n`)
    }
    for (const [size, kept] of [
      [2052, true],
      [2053, false],
    ] as const) {
      const head = parseRequestHead(at(size), 16384)
      assert.ok(typeof head === 'object')
      assert.equal(head.size, size)
      assert.equal(keepAsLast(head), kept)
    }
  })
})

describe("a response head's Keep-Alive hint", () => {
  const hint = (value: string | undefined): number | undefined => {
    const extra = value === undefined ? '' : `Keep-Alive: ${value}\r\n`
    const head = parseResponseHead(Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: 0\r\n${extra}\r\n`), 8192)
    assert.ok(typeof head === 'object' && 'status' in head)
    return head.keepAliveSec
  }

  it('is the timeout in seconds, in the forms servers send', () => {
    assert.equal(hint('timeout=5'), 5) // Node
    assert.equal(hint('timeout=5, max=100'), 5) // Apache
    assert.equal(hint('max=100, timeout=15'), 15)
    assert.equal(hint('TIMEOUT = 60'), 60)
  })

  it('is absent without a header, without a timeout, or with one that is no number', () => {
    assert.equal(hint(undefined), undefined)
    assert.equal(hint('max=100'), undefined)
    assert.equal(hint('timeout=abc'), undefined)
    assert.equal(hint('xtimeout=5'), undefined)
    assert.equal(hint('timeout=-1'), undefined)
  })
})
