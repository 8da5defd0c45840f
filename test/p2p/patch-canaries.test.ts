/**
 * Canaries for Warren's libp2p workarounds (UPSTREAM.md): each checks, on real nodes and real TCP and WebSocket
 * connections, that the workaround is in effect on a Warren node and absent on a stock one, so that a dependency
 * update that silently disables an installer (a hook renamed, a field moved) fails here. Covered: holdWindowUpdates
 * (Yamux window updates counted as sent), coalescing and batching (socket writes and WebSocket messages per turn),
 * quietNoiseDecoder (Noise's message reader), noiseCrypto (session keys imported once), the handshake's X25519 and
 * Ed25519 by libsodium, skipUnheardEvents (opt-in, process-wide), and the installers' own reports (src/p2p/patches/status.ts). Every exchange is checked by SHA-256 and
 * ends cleanly on both sides.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Connection, Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type NodeOptions, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { HOLD_WINDOW_BELOW } from '../../src/p2p/patches/coalesce.ts'
import { sodiumKeyOperations } from '../../src/p2p/patches/handshake-crypto.ts'
import {
  directOpensslMessages,
  importedSessionKeys,
  libsodiumMessages,
  quietDecode,
  quietUint16BE,
} from '../../src/p2p/patches/noise-crypto.ts'
import { patchesMissed, patchMissed } from '../../src/p2p/patches/status.ts'
import { unheardEventsSkipped } from '../../src/p2p/patches/unheard-events.ts'
import { PRESETS } from '../../src/p2p/presets.ts'

const ECHO = '/warren-test/canary-echo/1.0.0'

interface Pair {
  a: WarrenLibp2p
  b: WarrenLibp2p
  /** b's connection to a, and a's to b. */
  out: Connection
  inb: Connection
  /** a's echo handlers, settled with their error (or undefined) when each stream has ended. */
  echoes: Promise<Error | undefined>[]
  stop(): Promise<void>
}

async function pair(opts: Partial<NodeOptions>): Promise<Pair> {
  const a = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'], ...opts })
  const b = await createNode({ privateKey: await generateNodeKey(), listen: [], ...opts })
  const echoes: Promise<Error | undefined>[] = []
  await a.handle(ECHO, (stream: Stream) => {
    echoes.push(
      (async () => {
        for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain()
        await stream.close()
      })().then(
        () => undefined,
        (err: Error) => err,
      ),
    )
  })
  const opened = new Promise<Connection>((resolve) => {
    a.addEventListener('connection:open', (evt) => {
      if (evt.detail.remotePeer.equals(b.peerId)) resolve(evt.detail)
    })
  })
  const out = await b.dial(a.getMultiaddrs()[0]!)
  const inb = await opened
  return { a, b, out, inb, echoes, stop: async () => void (await Promise.all([a.stop(), b.stop()])) }
}

/** Deterministic bytes: `n` bytes derived from `seed`. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7) & 0xff
  return out
}

/** Reads from `it` until `n` bytes arrived; rejects if the stream ends first. */
async function readN(it: AsyncIterator<Uint8Array | Uint8ArrayList>, n: number): Promise<Uint8Array> {
  const got = new Uint8ArrayList()
  while (got.byteLength < n) {
    const r = await it.next()
    if (r.done === true) throw new Error(`stream ended after ${got.byteLength} of ${n} bytes`)
    got.append(r.value)
  }
  assert.equal(got.byteLength, n, 'the echo returned more than was sent')
  return got.subarray()
}

/**
 * `rounds` request/response exchanges of `size` bytes on one stream (or, with `burst`, `burst` sends in one turn per
 * round); returns the SHA-256 of what was sent and of what came back, after a clean close on both sides.
 */
async function exchange(
  p: Pair,
  rounds: number,
  size: number,
  burst = 1,
  onRound?: (round: number) => void,
): Promise<{ sent: string; echoed: string }> {
  const stream = await p.out.newStream(ECHO)
  const it = stream[Symbol.asyncIterator]()
  const sent = createHash('sha256')
  const echoed = createHash('sha256')
  for (let r = 0; r < rounds; r++) {
    onRound?.(r)
    for (let i = 0; i < burst; i++) {
      const chunk = bytes(size, r * burst + i)
      sent.update(chunk)
      assert.equal(stream.send(chunk), true)
    }
    echoed.update(await readN(it, size * burst))
  }
  await stream.close()
  assert.equal((await it.next()).done, true)
  assert.equal(await p.echoes.at(-1), undefined, 'the echo side ended with an error')
  return { sent: sent.digest('hex'), echoed: echoed.digest('hex') }
}

/** Counts the Yamux window updates (type 1, no flag, on a stream) a connection's muxer sends, as written. */
function countWindowUpdates(conn: Connection): { count: number } {
  const counter = { count: 0 }
  const enc = (conn as unknown as { muxer: { maConn: { send(d: Uint8Array | Uint8ArrayList): boolean } } }).muxer.maConn
  const send = enc.send.bind(enc)
  enc.send = (data) => {
    if (data.byteLength === 12) {
      const h = data instanceof Uint8Array ? data : data.subarray()
      const view = new DataView(h.buffer, h.byteOffset, 12)
      if (h[1] === 1 && view.getUint16(2) === 0 && view.getUint32(4) !== 0) counter.count++
    }
    return send(data)
  }
  return counter
}

/** Counts the write calls (`_write` or `_writev`, each one system call) a connection's TCP socket makes. */
function countSocketWrites(conn: Connection): { count: number } {
  const socket = (conn as unknown as { maConn: { socket: unknown } }).maConn.socket
  assert.ok(socket instanceof Socket, 'not a TCP connection')
  const counter = { count: 0 }
  const s = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>
  for (const name of ['_write', '_writev'] as const) {
    const orig = s[name].bind(socket)
    s[name] = (...args) => {
      counter.count++
      orig(...args)
    }
  }
  return counter
}

/** Counts the WebSocket messages a connection's WebSocket sends. */
function countWebSocketMessages(conn: Connection): { count: number } {
  const ws = (conn as unknown as { maConn: { websocket?: { send(data: unknown): void } } }).maConn.websocket
  assert.ok(ws !== undefined, 'not a WebSocket connection')
  const counter = { count: 0 }
  const send = ws.send.bind(ws)
  ws.send = (data) => {
    counter.count++
    send(data)
  }
  return counter
}

interface NoiseReader {
  lengthDecoder: (data: never) => number
  decode: unknown
}

function noiseReader(conn: Connection): NoiseReader {
  return (conn as unknown as { muxer: { maConn: { decoder: NoiseReader } } }).muxer.maConn.decoder
}

describe('skipUnheardEvents is opt-in', () => {
  it('a node created without the flag leaves main-event alone; with it, the patch is in effect', async () => {
    const plain = await pair({})
    try {
      assert.equal(unheardEventsSkipped(), false)
      // a stream's send dispatches `idle` through main-event when nothing listens (the stock behaviour)
      const stream = await plain.out.newStream(ECHO)
      const types: string[] = []
      const dispatch = stream.dispatchEvent.bind(stream)
      stream.dispatchEvent = (evt: Event) => {
        types.push(evt.type)
        return dispatch(evt)
      }
      stream.send(bytes(100, 1))
      const it = stream[Symbol.asyncIterator]()
      await readN(it, 100)
      assert.ok(types.includes('idle'), `stock main-event dispatched ${types.join(',')}`)
      await stream.close()
      assert.equal((await it.next()).done, true)
    } finally {
      await plain.stop()
    }
    const stock = await pair({ stock: true, skipUnheardEvents: true })
    await stock.stop()
    assert.equal(unheardEventsSkipped(), false, 'stock nodes never install it')
    const warren = await pair({ skipUnheardEvents: true })
    try {
      assert.equal(unheardEventsSkipped(), true)
      const stream = await warren.out.newStream(ECHO)
      const types: string[] = []
      const dispatch = stream.dispatchEvent.bind(stream)
      stream.dispatchEvent = (evt: Event) => {
        types.push(evt.type)
        return dispatch(evt)
      }
      stream.send(bytes(100, 1))
      const it = stream[Symbol.asyncIterator]()
      await readN(it, 100)
      assert.equal(types.includes('idle'), false, `Warren dispatched ${types.join(',')}`)
      await stream.close()
      assert.equal((await it.next()).done, true)
    } finally {
      await warren.stop()
    }
  })
})

describe('handshake crypto', () => {
  it("a Warren connection's X25519 goes to libsodium, a stock one's to the package", async () => {
    for (const stock of [false, true]) {
      const before = sodiumKeyOperations().exchanges
      const p = await pair({ stock })
      try {
        const r = await exchange(p, 3, 100)
        assert.equal(r.echoed, r.sent)
      } finally {
        await p.stop()
      }
      const made = sodiumKeyOperations().exchanges - before
      // Noise XX: three exchanges on each end
      if (stock) assert.equal(made, 0)
      else assert.ok(made >= 6, `${made} exchanges through libsodium`)
    }
  })

  it("a Warren node and a stock one connect either way, each end with its own node's crypto", async () => {
    for (const [dialer, listener] of [
      [{ skipUnheardEvents: true }, { stock: true }],
      [{ stock: true }, { skipUnheardEvents: true }],
    ] as const) {
      const before = sodiumKeyOperations().exchanges
      const a = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'], ...listener })
      const b = await createNode({ privateKey: await generateNodeKey(), listen: [], ...dialer })
      try {
        await a.handle(ECHO, async (stream: Stream) => {
          for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain()
          await stream.close()
        })
        const stream = await b.dialProtocol(a.getMultiaddrs()[0]!, ECHO)
        const it = stream[Symbol.asyncIterator]()
        const sent = createHash('sha256')
        const echoed = createHash('sha256')
        for (let r = 0; r < 5; r++) {
          const chunk = bytes(300, r)
          sent.update(chunk)
          assert.equal(stream.send(chunk), true)
          echoed.update(await readN(it, 300))
        }
        await stream.close()
        assert.equal((await it.next()).done, true)
        assert.equal(echoed.digest('hex'), sent.digest('hex'))
      } finally {
        await Promise.all([a.stop(), b.stop()])
      }
      // Noise XX: the Warren end's three exchanges, the stock end's none
      assert.equal(sodiumKeyOperations().exchanges - before, 3)
    }
  })

  it('with the process-wide patches asked for, the connection signs and checks with libsodium', async () => {
    const before = sodiumKeyOperations()
    const p = await pair({ skipUnheardEvents: true })
    try {
      const r = await exchange(p, 3, 100)
      assert.equal(r.echoed, r.sent)
    } finally {
      await p.stop()
    }
    const after = sodiumKeyOperations()
    // each end signs its Noise handshake payload and checks the other's
    assert.ok(after.signatures - before.signatures >= 2, `${after.signatures - before.signatures} signatures`)
    assert.ok(after.checks - before.checks >= 2, `${after.checks - before.checks} checks`)
    assert.deepEqual([...patchesMissed()], [])
  })
})

for (const stock of [false, true]) {
  const name = stock ? 'stock' : 'Warren'
  describe(`${name} connection`, () => {
    let p: Pair
    let keysAtStart = 0
    before(async () => {
      keysAtStart = importedSessionKeys()
      p = await pair({ stock })
    })
    after(async () => {
      await p.stop()
    })

    it(stock ? 'Noise reads with uint16BEDecode' : "Noise reads with Warren's reader, which throws nothing", () => {
      for (const conn of [p.out, p.inb]) {
        const reader = noiseReader(conn)
        if (stock) {
          assert.equal(reader.lengthDecoder.name, 'uint16BEDecode')
          assert.notEqual(reader.decode, quietDecode)
        } else {
          assert.equal(reader.lengthDecoder, quietUint16BE)
          assert.equal(reader.decode, quietDecode)
        }
      }
    })

    it(
      stock
        ? 'a window update per data frame received (upstream)'
        : 'holdWindowUpdates: window updates only per 64 KiB received',
      async () => {
        const outUpdates = countWindowUpdates(p.out)
        const inUpdates = countWindowUpdates(p.inb)
        const rounds = 1000
        const size = 100
        const r = await exchange(p, rounds, size)
        assert.equal(r.echoed, r.sent)
        // one update per 64 KiB consumed, plus one per doubling of the stream window as Yamux grows it from its
        // initial 256 KiB to the preset's maximum (those grants are larger than 64 KiB and go at once)
        const growth = Math.log2(PRESETS.default.maxStreamWindowSize / (256 * 1024))
        const perSide = Math.floor((rounds * size) / HOLD_WINDOW_BELOW) + growth + 1
        console.log(`# ${name}: window updates sent ${outUpdates.count} (dialer) + ${inUpdates.count} (listener)`)
        if (stock) {
          assert.ok(outUpdates.count >= rounds / 2, `upstream fixed? ${outUpdates.count} updates: see UPSTREAM.md #4`)
          assert.ok(inUpdates.count >= rounds / 2, `upstream fixed? ${inUpdates.count} updates: see UPSTREAM.md #4`)
        } else {
          assert.ok(outUpdates.count <= perSide, `${outUpdates.count} window updates from the dialer`)
          assert.ok(inUpdates.count <= perSide, `${inUpdates.count} window updates from the listener`)
        }
      },
    )

    it(
      stock
        ? 'ten sends of one turn take several socket writes (upstream)'
        : 'coalescing + batching: ten sends of one turn leave in one socket write',
      async () => {
        const writes = countSocketWrites(p.out)
        const perRound: number[] = []
        let before = 0
        const r = await exchange(p, 20, 200, 10, (round) => {
          if (round > 0) perRound.push(writes.count - before)
          before = writes.count
        })
        assert.equal(r.echoed, r.sent)
        console.log(`# ${name}: socket writes per round ${perRound.join(',')}`)
        // the first round also carries the stream's opening; later rounds are ten data frames in one turn each
        const rounds = perRound.slice(1)
        if (stock) assert.ok(Math.min(...rounds) >= 2, `upstream coalesces? ${rounds.join(',')}: see UPSTREAM.md #5`)
        else assert.ok(Math.max(...rounds) <= 1, `more than one write per turn: ${rounds.join(',')}`)
      },
    )

    it(
      stock
        ? "Noise uses the package's own crypto"
        : "noiseCrypto: small messages go to libsodium, large ones to Node's OpenSSL called directly",
      async () => {
        const sodiumBefore = libsodiumMessages()
        const directBefore = directOpensslMessages()
        const small = await exchange(p, 50, 400)
        assert.equal(small.echoed, small.sent)
        const sealed = libsodiumMessages() - sodiumBefore
        // large writes: Noise messages of up to 64 KiB, above SODIUM_BELOW
        const large = await exchange(p, 8, 60_000)
        assert.equal(large.echoed, large.sent)
        const direct = directOpensslMessages() - directBefore
        // no session key goes into a node:crypto KeyObject: Warren calls OpenSSL itself, stock Noise imports per message
        assert.equal(importedSessionKeys() - keysAtStart, 0)
        if (stock) {
          assert.equal(direct, 0)
          assert.equal(sealed, 0)
        } else {
          // 8 rounds of 60,000 bytes each way, each sealed on one side and opened on the other
          assert.ok(direct >= 4 * 8, `${direct} messages through OpenSSL called directly`)
          // 50 rounds of a message each way, sealed on one side and opened on the other
          assert.ok(sealed >= 4 * 50, `${sealed} messages through libsodium`)
        }
      },
    )

    it('every installer reported success', () => {
      assert.deepEqual([...patchesMissed()], [])
    })
  })
}

for (const stock of [false, true]) {
  const name = stock ? 'stock' : 'Warren'
  it(
    stock
      ? 'stock WebSocket connection: ten sends of one turn take several messages (upstream)'
      : 'Warren WebSocket connection: ten sends of one turn leave in one message',
    async () => {
      const p = await pair({ stock, listen: ['/ip4/127.0.0.1/tcp/0/ws'] })
      try {
        const messages = countWebSocketMessages(p.out)
        const perRound: number[] = []
        let before = 0
        const r = await exchange(p, 20, 200, 10, (round) => {
          if (round > 0) perRound.push(messages.count - before)
          before = messages.count
        })
        assert.equal(r.echoed, r.sent)
        console.log(`# ${name}: WebSocket messages per round ${perRound.join(',')}`)
        const rounds = perRound.slice(1)
        if (stock) assert.ok(Math.min(...rounds) >= 2, `upstream coalesces? ${rounds.join(',')}: see UPSTREAM.md #5`)
        else assert.ok(Math.max(...rounds) <= 1, `more than one message per turn: ${rounds.join(',')}`)
        assert.deepEqual([...patchesMissed()], [])
      } finally {
        await p.stop()
      }
    },
  )
}

describe('patch reports', () => {
  it('a workaround that cannot be installed warns once, with its reason, and is listed', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error): void => void warnings.push(w)
    process.on('warning', onWarning)
    try {
      patchMissed('holdWindowUpdates', 'the muxer has no `sendFrame`')
      patchMissed('holdWindowUpdates', 'again')
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    assert.equal(warnings.length, 1)
    assert.equal((warnings[0] as NodeJS.ErrnoException).code, 'WARREN_PATCH_MISSED')
    assert.equal(
      warnings[0]!.message,
      "Warren's holdWindowUpdates workaround is not in effect: the muxer has no `sendFrame` (see UPSTREAM.md)",
    )
    assert.deepEqual([...patchesMissed()], [['holdWindowUpdates', 'the muxer has no `sendFrame`']])
  })
})
