/**
 * The pieces of TCP direct paths on loopback: STUN over TCP (framing, responder, client from a chosen port) and the
 * bound on a simultaneous open. The open itself needs NATs that drop unsolicited SYNs (on loopback each SYN that
 * comes early is refused at once, so two connects rarely overlap): the NAT lab tests (direct-path-tcp.test.ts,
 * warren-matrix.test.ts) run it, the upgrade and the path watch through real NATs.
 */
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { bindingRequest, encodeStun } from '../../src/stun/codec.ts'
import { tcpStunBinding } from '../../src/stun/tcp-client.ts'
import { type StunTcpResponder, startStunTcpResponder, takeStunFrames } from '../../src/stun/tcp-server.ts'
import { tcpBirthdayEasy, tcpBirthdayHard } from '../../src/traversal/punch/tcp-birthday.ts'
import { tcpSimultaneousOpen } from '../../src/traversal/punch/tcp-punch.ts'

const listen = (server: Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)))

describe('STUN over TCP', () => {
  let responder: StunTcpResponder
  let other: StunTcpResponder
  before(async () => {
    responder = await startStunTcpResponder({ host: '127.0.0.1', port: 0 })
    other = await startStunTcpResponder({ host: '127.0.0.1', port: 0 })
  })
  after(async () => {
    await responder?.close()
    await other?.close()
  })

  it('frames messages by their length field and refuses what cannot be STUN', () => {
    const one = Buffer.from(encodeStun(bindingRequest()))
    const two = Buffer.from(encodeStun(bindingRequest()))
    const state = { buffered: Buffer.alloc(0) }
    assert.deepEqual(takeStunFrames(state, one.subarray(0, 7)), [])
    const frames = takeStunFrames(state, Buffer.concat([one.subarray(7), two.subarray(0, 10)]))
    assert.equal(frames.length, 1)
    assert.ok(frames[0]!.equals(one))
    assert.ok(takeStunFrames(state, two.subarray(10))[0]!.equals(two))
    assert.equal(state.buffered.length, 0)
    assert.throws(
      () => takeStunFrames({ buffered: Buffer.alloc(0) }, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')),
      {
        message: 'not a STUN message',
      },
    )
    const long = Buffer.alloc(20)
    long.writeUInt16BE(4000, 2)
    assert.throws(() => takeStunFrames({ buffered: Buffer.alloc(0) }, long), {
      message: 'STUN message of 4020 bytes is too long',
    })
  })

  it('tells the mapping of the local port, again from the same port to another server, and counts answers', async () => {
    const before = responder.answered
    const first = await tcpStunBinding(responder.address)
    const second = await tcpStunBinding(other.address, { localPort: first.localPort })
    try {
      assert.deepEqual(first.mapped, { host: '127.0.0.1', port: first.localPort })
      assert.deepEqual(second.mapped, first.mapped, 'two connections share the port (SO_REUSEADDR, no listener)')
      assert.equal(responder.answered, before + 1)
      assert.equal(other.answered, 1)
    } finally {
      first.socket.destroy()
      second.socket.destroy()
    }
  })

  it('refuses a socket the kernel connected to itself (its own free port as the server)', async () => {
    const free = createServer()
    const port = await listen(free)
    await new Promise((r) => free.close(r))
    await assert.rejects(tcpStunBinding({ host: '127.0.0.1', port }, { localPort: port }), {
      code: 'ERR_NO_DIRECT_PATH',
      message: `STUN over TCP to 127.0.0.1:${port} failed: connected to itself (nothing listens there)`,
    })
  })

  it('closes a connection that sends something other than STUN', async () => {
    const { connect } = await import('node:net')
    const s: Socket = connect(responder.address.port, '127.0.0.1')
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    const got: Buffer[] = []
    s.on('data', (d: Buffer) => got.push(d))
    await new Promise((resolve) => s.once('close', resolve))
    assert.equal(Buffer.concat(got).length, 0, 'no answer')
  })

  it('fails with ERR_NO_DIRECT_PATH when nothing listens, ERR_TIMEOUT when the server is silent', async () => {
    // two ports bound at once, then freed: the binding comes from one to the other, so it cannot meet itself
    const closed = createServer()
    const from = createServer()
    const port = await listen(closed)
    const localPort = await listen(from)
    await Promise.all([new Promise((r) => closed.close(r)), new Promise((r) => from.close(r))])
    await assert.rejects(
      tcpStunBinding({ host: '127.0.0.1', port }, { localPort }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_NO_DIRECT_PATH')
        assert.match(err.message, new RegExp(`^STUN over TCP to 127\\.0\\.0\\.1:${port} failed: connect ECONNREFUSED`))
        return true
      },
    )
    const held: Socket[] = []
    const silent = createServer((s) => held.push(s.on('error', () => undefined)))
    const silentPort = await listen(silent)
    try {
      await assert.rejects(tcpStunBinding({ host: '127.0.0.1', port: silentPort }, { timeoutMs: 300 }), {
        code: 'ERR_TIMEOUT',
        message: `no STUN answer over TCP from 127.0.0.1:${silentPort} in 300 ms`,
      })
    } finally {
      for (const s of held) s.destroy()
      silent.close()
    }
  })
})

describe('TCP simultaneous open', () => {
  it('gives up at its deadline when the other side never connects', async () => {
    const started = performance.now()
    const p = tcpSimultaneousOpen(0, { host: '127.0.0.1', port: 9 }, { timeoutMs: 400 })
    assert.equal(await p.socket, undefined)
    const ms = performance.now() - started
    assert.ok(ms >= 350 && ms < 2000, `gave up after ${ms.toFixed(0)} ms`)
  })
})

describe('TCP birthday probing (bounds; the hit itself needs NATs, see the lab tests)', () => {
  it('the easy side sends at most its probe budget and gives up at its deadline', async () => {
    const started = performance.now()
    const p = tcpBirthdayEasy(0, { host: '127.0.0.1', port: 9 }, { maxProbes: 40, timeoutMs: 500 })
    assert.equal(await p.socket, undefined)
    assert.equal(p.launched, 40)
    const ms = performance.now() - started
    assert.ok(ms >= 450 && ms < 2000, `gave up after ${ms.toFixed(0)} ms`)
  })

  it('the easy side sends nothing before the hard side is armed', async () => {
    const p = tcpBirthdayEasy(0, { host: '127.0.0.1', port: 9 }, { timeoutMs: 300, probeAfter: new Promise(() => {}) })
    assert.equal(await p.socket, undefined)
    assert.equal(p.launched, 0)
  })

  it('the hard side opens exactly its sockets and gives up at its deadline', async () => {
    const p = tcpBirthdayHard(12, { host: '127.0.0.1', port: 9 }, { timeoutMs: 300 })
    assert.equal(p.launched, 12)
    assert.equal(await p.socket, undefined)
  })
})
