/**
 * The framing of `stream.open` connections (src/daemon/stream-frames.ts): the decoder on every split of its input,
 * each malformed frame's exact error, and FramedStream over a real Unix socket pair — clean ends both ways with
 * half-close, ABORT in and out, a peer that goes away without END, and back-pressure on the socket.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import {
  type AbortInfo,
  encodeAbort,
  encodeData,
  encodeEnd,
  FrameDecoder,
  FramedStream,
  type FrameEvent,
  MAX_FRAME_PAYLOAD,
} from '../../src/daemon/stream-frames.ts'
import { isWarrenError } from '../../src/errors.ts'
import { eventually } from '../support/eventually.ts'

const frame = (type: number, payload: Buffer, length = payload.length): Buffer => {
  const h = Buffer.alloc(5)
  h[0] = type
  h.writeUInt32BE(length, 1)
  return Buffer.concat([h, payload])
}

/** Decodes `wire` fed in pieces of `step` bytes; DATA pieces are joined into one event per run. */
function decodeAll(wire: Buffer, step: number): (FrameEvent | { kind: 'data'; text: string })[] {
  const d = new FrameDecoder()
  const out: (FrameEvent | { kind: 'data'; text: string })[] = []
  let data = ''
  for (let i = 0; i < wire.length; i += step) {
    for (const e of d.push(wire.subarray(i, i + step))) {
      if (e.kind === 'data') data += e.bytes.toString()
      else {
        if (data !== '') out.push({ kind: 'data', text: data })
        data = ''
        out.push(e)
      }
    }
  }
  if (data !== '') out.push({ kind: 'data', text: data })
  return out
}

test('the decoder gives the same events however the bytes are split', () => {
  const wire = Buffer.concat([
    ...encodeData(Buffer.from('hello ')),
    frame(0, Buffer.alloc(0)), // an empty DATA frame means nothing
    ...encodeData(Buffer.from('world')),
    encodeEnd(),
    encodeAbort({ code: 'ERR_CONNECTION_LOST', message: 'the connection closed before the stream ended' }),
  ])
  const want = [
    { kind: 'data', text: 'hello world' },
    { kind: 'end' },
    { kind: 'abort', info: { code: 'ERR_CONNECTION_LOST', message: 'the connection closed before the stream ended' } },
  ]
  for (let step = 1; step <= wire.length; step++) assert.deepEqual(decodeAll(wire, step), want, `step ${step}`)
})

test('DATA is split into frames of at most 64 KiB and comes back whole', () => {
  const data = Buffer.alloc(3 * MAX_FRAME_PAYLOAD + 7, 0xab)
  const parts = encodeData(data)
  assert.equal(parts.length, 8) // 4 headers, 4 payloads
  assert.deepEqual(
    parts.filter((_, i) => i % 2 === 1).map((p) => p.length),
    [MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, MAX_FRAME_PAYLOAD, 7],
  )
  const events = new FrameDecoder().push(Buffer.concat(parts))
  assert.deepEqual(Buffer.concat(events.map((e) => (e.kind === 'data' ? e.bytes : Buffer.alloc(0)))), data)
})

test('ABORT payloads: JSON with code and message; anything else becomes the message; long ones are cut', () => {
  const decode = (b: Buffer): AbortInfo => {
    const [e] = new FrameDecoder().push(b)
    assert.equal(e?.kind, 'abort')
    return (e as { info: AbortInfo }).info
  }
  assert.deepEqual(decode(frame(2, Buffer.from('plain words'))), { code: 'ERR_STREAM_ABORTED', message: 'plain words' })
  assert.deepEqual(decode(frame(2, Buffer.from('{"message":"no code"}'))), {
    code: 'ERR_STREAM_ABORTED',
    message: 'no code',
  })
  assert.deepEqual(decode(frame(2, Buffer.alloc(0))), {
    code: 'ERR_STREAM_ABORTED',
    message: 'aborted without a reason',
  })
  const long = encodeAbort({ code: 'ERR_X', message: 'x'.repeat(200_000) })
  assert.ok(long.length <= 5 + MAX_FRAME_PAYLOAD, `${long.length} bytes`)
  const info = decode(long)
  assert.equal(info.code, 'ERR_X')
  assert.match(info.message, /^x+…$/)
})

test('malformed frames are ERR_API errors naming what is wrong', () => {
  const cases: [Buffer, string][] = [
    [frame(7, Buffer.from('x')), 'unknown frame type 7'],
    [frame(0, Buffer.alloc(0), MAX_FRAME_PAYLOAD + 1), `a frame of ${MAX_FRAME_PAYLOAD + 1} bytes (at most 65536)`],
    [frame(1, Buffer.from('x')), 'an END frame with 1 bytes of payload'],
    [Buffer.from('{"jsonrpc":"2.0"}'), 'unknown frame type 123'], // raw bytes from a daemon that does not frame
  ]
  for (const [wire, what] of cases) {
    assert.throws(
      () => new FrameDecoder().push(wire),
      (err: unknown) => {
        assert.ok(isWarrenError(err, 'ERR_API'))
        assert.equal(err.message, `the local API stream is not framed as expected: ${what}`)
        assert.equal(err.hint, 'The daemon and this client may be different Warren versions; restart the daemon.')
        return true
      },
    )
  }
})

// FramedStream over a real Unix socket pair: `peer` is the raw socket on the other end.
let dir: string
let server: Server
let accepted: Socket[] = []
const all = new Set<Socket>()

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wframes-'))
  server = createServer({ allowHalfOpen: true }, (s) => {
    accepted.push(s)
    all.add(s)
  })
  await new Promise<void>((r) => server.listen(join(dir, 's.sock'), r))
})

after(async () => {
  for (const s of all) s.destroy()
  await new Promise((r) => server.close(r))
  await rm(dir, { recursive: true, force: true })
})

const opts = {
  aborted: (info: AbortInfo) => new Error(`aborted by the peer: ${info.code} ${info.message}`),
  lost: (cause?: Error) => new Error(`lost${cause ? `: ${cause.message}` : ''}`),
}

async function socketPair(): Promise<{ mine: Socket; peer: Socket }> {
  accepted = []
  const mine = createConnection({ path: join(dir, 's.sock'), allowHalfOpen: true })
  all.add(mine)
  await once(mine, 'connect')
  while (accepted.length === 0) await new Promise((r) => setImmediate(r))
  return { mine, peer: accepted[0]! }
}

/** Everything a raw peer socket receives until it ends, decoded. */
async function peerReceives(peer: Socket): Promise<(FrameEvent | { kind: 'data'; text: string })[]> {
  const chunks: Buffer[] = []
  peer.on('data', (d: Buffer) => chunks.push(d))
  peer.on('error', () => {})
  await once(peer, 'end')
  return decodeAll(Buffer.concat(chunks), 1 << 20)
}

function settle(s: FramedStream): Promise<{ data: string; ending: string }> {
  return new Promise((resolve) => {
    let data = ''
    s.on('data', (d: Buffer) => {
      data += d.toString()
    })
    s.once('end', () => resolve({ data, ending: 'end' }))
    s.once('error', (err) => resolve({ data, ending: err.message }))
  })
}

test('a clean stream: half-close one way, the other keeps flowing, both ENDs close the socket', async () => {
  const { mine, peer } = await socketPair()
  const s = new FramedStream(mine, opts)
  const got = settle(s)
  const closed = once(s, 'close')
  const socketClosed = once(mine, 'close')
  const chunks: Buffer[] = []
  peer.on('data', (d: Buffer) => chunks.push(d))
  s.end('request') // our END first: the peer can still answer
  await eventually(() => decodeAll(Buffer.concat(chunks), 1 << 20).length === 2, {
    intervalMs: 5,
    message: 'two frames',
  })
  assert.deepEqual(decodeAll(Buffer.concat(chunks), 1 << 20), [{ kind: 'data', text: 'request' }, { kind: 'end' }])
  assert.equal(s.complete, false)
  peer.write(Buffer.concat([...encodeData(Buffer.from('answer')), encodeEnd()]))
  assert.deepEqual(await got, { data: 'answer', ending: 'end' })
  await once(peer, 'end') // we close our side of the socket once END went both ways
  peer.end()
  await closed
  await socketClosed
  assert.equal(s.complete, true)
})

test('after a clean end the socket closes, also when the reader was slow and held the socket paused', async () => {
  const { mine, peer } = await socketPair()
  const s = new FramedStream(mine, opts)
  const socketClosed = once(mine, 'close')
  const size = 4 * 1024 * 1024
  peer.on('data', () => {})
  peer.on('end', () => peer.end()) // the peer ends its socket once both ENDs went through
  peer.write(Buffer.concat([...encodeData(Buffer.alloc(size, 7)), encodeEnd()]))
  s.end()
  let n = 0
  s.on('data', (d: Buffer) => {
    n += d.length
    s.pause() // a slow reader: its buffer stays full, so the socket is paused when END arrives
    setImmediate(() => s.resume())
  })
  await once(s, 'end')
  assert.equal(n, size)
  await socketClosed
  assert.equal(s.complete, true)
})

test('ABORT from the other side fails the stream with its code and message', async () => {
  const { mine, peer } = await socketPair()
  const s = new FramedStream(mine, opts)
  const got = settle(s)
  const sent = peerReceives(peer)
  peer.write(
    Buffer.concat([
      ...encodeData(Buffer.from('partial')),
      encodeAbort({ code: 'ERR_CONNECTION_LOST', message: 'the connection closed before the stream ended' }),
    ]),
  )
  assert.deepEqual(await got, {
    data: 'partial',
    ending: 'aborted by the peer: ERR_CONNECTION_LOST the connection closed before the stream ended',
  })
  assert.deepEqual(await sent, []) // no ABORT back, just the socket closed
})

test('a peer that goes away without END fails the stream, even after its own END', async () => {
  for (const theirEnd of [false, true]) {
    const { mine, peer } = await socketPair()
    const s = new FramedStream(mine, opts)
    const events: string[] = []
    s.on('data', (d: Buffer) => events.push(`data ${d}`))
    s.on('end', () => events.push('end'))
    s.on('error', (err) => events.push(`error ${err.message}`))
    const closed = new Promise((r) => s.once('close', r))
    peer.on('error', () => {})
    // a raw FIN; we never sent END, so the stream is not complete even when the peer's END came first
    peer.end(Buffer.concat([...encodeData(Buffer.from('some')), ...(theirEnd ? [encodeEnd()] : [])]))
    await closed
    assert.deepEqual(events, theirEnd ? ['data some', 'end', 'error lost'] : ['data some', 'error lost'])
    assert.equal(s.complete, false)
  }
})

test('destroy(err) sends ABORT with the reason; destroy() before the end sends one too', async () => {
  const cases: [Error | undefined, AbortInfo][] = [
    [
      Object.assign(new Error('the far side reset the stream'), { code: 'ERR_STREAM_RESET' }),
      { code: 'ERR_STREAM_RESET', message: 'the far side reset the stream' },
    ],
    [
      Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }),
      { code: 'ERR_STREAM_ABORTED', message: 'write EPIPE' },
    ],
    [undefined, { code: 'ERR_STREAM_ABORTED', message: 'the stream was closed before it ended' }],
  ]
  for (const [err, info] of cases) {
    const { mine, peer } = await socketPair()
    const s = new FramedStream(mine, opts)
    s.on('error', () => {})
    const sent = peerReceives(peer)
    s.write('first')
    s.destroy(err)
    assert.deepEqual(await sent, [
      { kind: 'data', text: 'first' },
      { kind: 'abort', info },
    ])
  }
})

test('a malformed frame from the other side: the stream fails with ERR_API and the peer gets ABORT saying why', async () => {
  const { mine, peer } = await socketPair()
  const s = new FramedStream(mine, opts)
  const got = settle(s)
  const sent = peerReceives(peer)
  peer.write('HTTP/1.1 200 OK\r\n') // raw bytes, as an older daemon would send them
  const message = 'the local API stream is not framed as expected: unknown frame type 72'
  assert.deepEqual(await got, { data: '', ending: message })
  assert.deepEqual(await sent, [{ kind: 'abort', info: { code: 'ERR_API', message } }])
})

test('back-pressure: an unread stream stops reading its socket, and then delivers every byte', async () => {
  const { mine, peer } = await socketPair()
  const s = new FramedStream(mine, opts)
  const size = 16 * 1024 * 1024
  const data = Buffer.alloc(size)
  for (let i = 0; i < size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i)
  for (const part of encodeData(data)) peer.write(part)
  peer.write(encodeEnd())
  s.pause()
  s.resume()
  s.pause() // started, then stopped: it reads up to its buffer and must stop there
  await eventually(() => s.readableLength >= s.readableHighWaterMark, { intervalMs: 5, message: 'a full read buffer' })
  // a fixed wait on purpose: nothing may happen in it (a stream that kept reading would pull megabytes in this time)
  await new Promise((r) => setTimeout(r, 200))
  assert.ok(s.readableLength < 1024 * 1024, `${s.readableLength} bytes buffered in the stream`)
  assert.ok(peer.writableLength > size / 2, `only ${peer.writableLength} bytes still waiting at the writer`)
  const h = createHash('sha256')
  let n = 0
  s.on('data', (d: Buffer) => {
    h.update(d)
    n += d.length
  })
  s.resume()
  await once(s, 'end')
  assert.equal(n, size)
  assert.equal(h.digest('hex'), createHash('sha256').update(data).digest('hex'))
  s.destroy()
  peer.destroy()
})
