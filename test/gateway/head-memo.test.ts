/**
 * The memo of parsed heads (src/http/head-memo.ts) and its use by the fast path's parser (src/http/http1.ts): a head
 * seen before comes back as the same frozen object, bounded in entries and in key length.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HeadMemo } from '../../src/http/head-memo.ts'
import { parseRequestHead, parseResponseHead } from '../../src/http/http1.ts'

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
