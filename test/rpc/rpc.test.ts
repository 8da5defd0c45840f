/**
 * `/warren/rpc/1.0.0` between two real libp2p nodes on loopback TCP: built-ins, registered methods with the caller's
 * id, access rules, every JSON-RPC error the spec names, the size limit (the stream survives an oversized message),
 * the time-out, batches and several requests on one stream.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Connection } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { registerBuiltins } from '../../src/rpc/builtins.ts'
import { batchOn, callOn, exchange, openRpcStream } from '../../src/rpc/client.ts'
import { RpcMethods } from '../../src/rpc/methods.ts'
import { RpcServer } from '../../src/rpc/server.ts'
import { encodeMessage, RPC_STREAMS_PER_CONNECTION, RpcCode, takeMessage } from '../../src/rpc/wire.ts'

describe('/warren/rpc/1.0.0', () => {
  let host: WarrenLibp2p
  let caller: WarrenLibp2p
  let stranger: WarrenLibp2p
  let conn: Connection
  let strangerConn: Connection
  let methods: RpcMethods
  let server: RpcServer
  const publicMethods = new Set<string>(['_ping'])
  let slowAborted = false

  before(async () => {
    host = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    caller = await createNode({ privateKey: await generateNodeKey(), listen: [] })
    stranger = await createNode({ privateKey: await generateNodeKey(), listen: [] })
    const allowed = new Set([caller.peerId.toString()])
    methods = new RpcMethods({ allowed: () => allowed, public: () => publicMethods })
    registerBuiltins(methods, {
      id: host.peerId.toString(),
      version: '9.9.9',
      startedAt: Date.now() - 1000,
      protocols: () => host.getProtocols(),
      servicesFor: (who) =>
        who === caller.peerId.toString()
          ? [
              { name: 'web', type: 'http', description: 'the wiki' },
              { name: 'ssh', type: 'tcp' },
            ]
          : [],
    })
    methods.register('echo', (params, { caller: who }) => ({ params, caller: who }))
    methods.register(
      'slow',
      (_p, { signal }) =>
        new Promise((r) =>
          signal.addEventListener('abort', () => {
            slowAborted = true
            r('late')
          }),
        ),
    )
    methods.register('bad', (params) => {
      if (typeof (params as { n?: unknown })?.n !== 'number') throw new (class extends Error {})('boom')
      return 1
    })
    methods.register('open', () => 'anyone', { allow: '*' })
    methods.register('wait', (params) => new Promise((r) => setTimeout(() => r(params), (params as { ms: number }).ms)))
    server = new RpcServer(host, methods, { timeoutMs: 300, maxMessageBytes: 64 * 1024 })
    await server.start()
    conn = await caller.dial(host.getMultiaddrs()[0]!)
    strangerConn = await stranger.dial(host.getMultiaddrs()[0]!)
  })
  after(async () => {
    await server.stop()
    await Promise.all([host.stop(), caller.stop(), stranger.stop()])
  })

  it('_ping answers with the path as the host sees it', async () => {
    const r = (await callOn(conn, '_ping', {})) as { pong: boolean; path: { kind: string; addr: string } }
    assert.equal(r.pong, true)
    assert.equal(r.path.kind, 'direct')
    assert.match(r.path.addr, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
  })

  it('_info gives version, id, uptime, protocols and the methods this caller may call', async () => {
    const r = (await callOn(conn, '_info')) as Record<string, unknown>
    assert.equal(r.id, host.peerId.toString())
    assert.equal(r.version, '9.9.9')
    assert.ok((r.uptimeMs as number) >= 1000)
    assert.ok((r.protocols as string[]).includes('/warren/rpc/1.0.0'))
    assert.deepEqual(r.methods, ['_info', '_ping', '_services', 'bad', 'echo', 'open', 'slow', 'wait'])
  })

  it('_services lists what this caller may use, with type and description', async () => {
    assert.deepEqual(await callOn(conn, '_services'), [
      { name: 'web', type: 'http', description: 'the wiki' },
      { name: 'ssh', type: 'tcp' },
    ])
  })

  it("a registered method gets the caller's node id", async () => {
    assert.deepEqual(await callOn(conn, 'echo', { a: [1, 'x'] }), {
      params: { a: [1, 'x'] },
      caller: caller.peerId.toString(),
    })
  })

  it('a node outside rpc.allow is refused (ERR_RPC_REFUSED), except for public methods and open ones', async () => {
    await assert.rejects(callOn(strangerConn, 'echo', {}), (err) => {
      assert.ok(isWarrenError(err, 'ERR_RPC_REFUSED'))
      assert.equal(err.message, `node ${host.peerId} does not allow this node to call "echo"`)
      return true
    })
    await assert.rejects(callOn(strangerConn, '_services'), (err) => isWarrenError(err, 'ERR_RPC_REFUSED'))
    assert.equal(((await callOn(strangerConn, '_ping')) as { pong: boolean }).pong, true)
    assert.equal(await callOn(strangerConn, 'open'), 'anyone')
  })

  it('an unknown method is -32601 (ERR_RPC_UNKNOWN_METHOD)', async () => {
    await assert.rejects(callOn(conn, 'nope'), (err) => {
      assert.ok(isWarrenError(err, 'ERR_RPC_UNKNOWN_METHOD'))
      assert.equal(err.message, `node ${host.peerId} has no method "nope"`)
      return true
    })
  })

  it('bad params are -32602 (ERR_RPC_BAD_PARAMS)', async () => {
    await assert.rejects(callOn(conn, '_ping', { x: 1 }), (err) => {
      assert.ok(isWarrenError(err, 'ERR_RPC_BAD_PARAMS'))
      assert.equal(err.message, `node ${host.peerId} refused the params of "_ping": _ping takes no params`)
      return true
    })
  })

  it('a handler that throws something else is -32603 and says nothing of its internals', async () => {
    await assert.rejects(callOn(conn, 'bad', {}), (err) => {
      assert.ok(isWarrenError(err, 'ERR_RPC_FAILED'))
      assert.equal(err.message, `node ${host.peerId} answered "bad" with error -32603: the method failed`)
      return true
    })
  })

  it('a method that does not answer in time is -32002 (ERR_TIMEOUT), and its signal is aborted', async () => {
    await assert.rejects(callOn(conn, 'slow'), (err) => {
      assert.ok(isWarrenError(err, 'ERR_TIMEOUT'))
      assert.equal(err.message, `node ${host.peerId}: "slow" did not answer within 300 ms`)
      return true
    })
    assert.equal(slowAborted, true)
  })

  it('a batch: answers for each request, errors in place, none for a notification', async () => {
    const answers = await batchOn(conn, [
      { jsonrpc: '2.0', id: 1, method: 'echo', params: [1] },
      { jsonrpc: '2.0', id: 2, method: 'nope' },
      { jsonrpc: '2.0', method: 'echo', params: [3] },
    ])
    const byId = new Map(answers.map((a) => [a.id, a]))
    assert.equal(answers.length, 2)
    assert.deepEqual(byId.get(1), { jsonrpc: '2.0', id: 1, result: { params: [1], caller: caller.peerId.toString() } })
    assert.deepEqual((byId.get(2) as { error: { code: number } }).error.code, RpcCode.METHOD_NOT_FOUND)
  })

  it('malformed messages: not JSON is -32700, not a request is -32600, an empty batch is -32600', async () => {
    const stream = await openRpcStream(conn, AbortSignal.timeout(5000))
    const ask = (body: string): Promise<unknown> =>
      new Promise((resolve, reject) => {
        const got = new Uint8ArrayList()
        const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
          got.append(evt.data)
          try {
            const answer = takeMessage(got)
            if (answer === undefined) return
            stream.removeEventListener('message', onMessage)
            resolve(JSON.parse(new TextDecoder().decode(answer)))
          } catch (err) {
            reject(err)
          }
        }
        stream.addEventListener('message', onMessage)
        const b = new TextEncoder().encode(body)
        stream.send(Uint8Array.from([b.length, ...b])) // bodies under 128 bytes: a one-byte length prefix
      })
    assert.equal(((await ask('{nope')) as { error: { code: number } }).error.code, RpcCode.PARSE_ERROR)
    const notReq = (await ask('{"jsonrpc":"1.0","id":7,"method":"x"}')) as { id: number; error: { code: number } }
    assert.equal(notReq.error.code, RpcCode.INVALID_REQUEST)
    assert.equal(notReq.id, 7)
    assert.equal(((await ask('[]')) as { error: { code: number } }).error.code, RpcCode.INVALID_REQUEST)
    await stream.close()
  })

  it('an oversized message is -32003 (ERR_RPC_TOO_LARGE) and skipped; the same stream answers the next one', async () => {
    const stream = await openRpcStream(conn, AbortSignal.timeout(10_000))
    const big = { jsonrpc: '2.0', id: 1, method: 'echo', params: { s: 'x'.repeat(200 * 1024) } }
    const first = (await exchange(stream, big, { maxMessageBytes: 1024 * 1024 })) as { error: { code: number } }
    assert.equal(first.error.code, RpcCode.TOO_LARGE)
    const second = (await exchange(stream, { jsonrpc: '2.0', id: 2, method: 'echo', params: [2] })) as {
      id: number
      result: unknown
    }
    assert.deepEqual(second, { jsonrpc: '2.0', id: 2, result: { params: [2], caller: caller.peerId.toString() } })
    await stream.close()
  })

  it('the caller refuses to send a request over its own limit (ERR_RPC_TOO_LARGE)', async () => {
    await assert.rejects(callOn(conn, 'echo', { s: 'x'.repeat(2 * 1024 * 1024) }), (err) => {
      assert.ok(isWarrenError(err, 'ERR_RPC_TOO_LARGE'))
      return true
    })
  })

  it('many requests on one stream, answered as they finish', async () => {
    const stream = await openRpcStream(conn, AbortSignal.timeout(10_000))
    for (let i = 0; i < 50; i++) {
      const a = (await exchange(stream, { jsonrpc: '2.0', id: i, method: 'echo', params: [i] })) as { id: number }
      assert.equal(a.id, i)
    }
    stream.send(encodeMessage({ jsonrpc: '2.0', method: 'echo' })) // a notification: no answer
    const last = (await exchange(stream, { jsonrpc: '2.0', id: 'end', method: '_ping' })) as { id: string }
    assert.equal(last.id, 'end')
    await stream.close()
  })

  it('a caller that does not read its answers: the host stops reading it instead of piling answers up', async () => {
    const stream = await openRpcStream(conn, AbortSignal.timeout(10_000))
    stream.pause()
    const filler = 'x'.repeat(60 * 1024)
    let sent = 0
    // the caller sends until the host, holding its unsent answers, stops taking requests (bounded: 2,000 at most)
    while (sent < 2_000) {
      if (!stream.send(encodeMessage({ jsonrpc: '2.0', id: sent, method: 'echo', params: [filler] }))) {
        const drained = await Promise.race([
          new Promise<boolean>((r) => stream.addEventListener('drain', () => r(true), { once: true })),
          new Promise<boolean>((r) => setTimeout(() => r(false), 1_000)),
        ])
        sent++
        if (!drained) break
      } else sent++
    }
    assert.ok(sent < 2_000, 'the host kept reading requests whose answers were not taken')
    const held = host
      .getConnections(caller.peerId)
      .flatMap((c) => c.streams)
      .find((x) => x.protocol === '/warren/rpc/1.0.0' && x.direction === 'inbound' && x.id === stream.id)
    assert.ok(held !== undefined)
    assert.equal(held.readStatus, 'paused')
    assert.ok(held.writeBufferLength < 4 * 1024 * 1024, `${held.writeBufferLength} bytes of answers held`)
    // once the caller reads, every request gets its whole answer
    const buf = new Uint8ArrayList()
    const answers: { id: number; result: { params: string[] } }[] = []
    const all = new Promise<void>((resolve) => {
      stream.addEventListener('message', (evt) => {
        buf.append(evt.data)
        for (let m = takeMessage(buf, 1024 * 1024); m !== undefined; m = takeMessage(buf, 1024 * 1024)) {
          answers.push(JSON.parse(new TextDecoder().decode(m)))
          if (answers.length === sent) resolve()
        }
      })
    })
    stream.resume()
    await all
    assert.deepEqual(
      answers.map((a) => a.id).sort((x, y) => x - y),
      Array.from({ length: sent }, (_, i) => i),
    )
    assert.ok(answers.every((a) => a.result.params[0] === filler))
    await stream.close()
  })

  it(`more calls at once than the ${RPC_STREAMS_PER_CONNECTION} streams a node takes from a connection: each is answered`, async () => {
    const calls = Array.from({ length: 30 }, (_, i) => callOn(conn, 'wait', { ms: 150, i }))
    const answers = (await Promise.all(calls)) as { i: number }[]
    assert.deepEqual(
      answers.map((a) => a.i),
      Array.from({ length: 30 }, (_, i) => i),
    )
  })

  it('a call that waits for a free stream longer than its time-out fails with ERR_TIMEOUT, naming why', async () => {
    const busy = Array.from({ length: RPC_STREAMS_PER_CONNECTION }, () => callOn(conn, 'wait', { ms: 250 }))
    await assert.rejects(callOn(conn, 'echo', [1], { timeoutMs: 100 }), (err) => {
      assert.ok(isWarrenError(err, 'ERR_TIMEOUT'))
      assert.equal(
        err.message,
        `no RPC stream to node ${host.peerId} came free in time: ${RPC_STREAMS_PER_CONNECTION} calls to it were under way`,
      )
      return true
    })
    await Promise.all(busy)
    assert.deepEqual(await callOn(conn, 'echo', [2]), { params: [2], caller: caller.peerId.toString() })
  })

  it('registering a reserved, malformed or taken name fails with ERR_RPC_NAME', () => {
    assert.throws(
      () => methods.register('_mine', () => 1),
      (err) => {
        assert.ok(isWarrenError(err, 'ERR_RPC_NAME'))
        assert.equal(err.message, `method names starting with "_" are Warren's own ("_mine")`)
        return true
      },
    )
    assert.throws(
      () => methods.register('has space', () => 1),
      (err) => isWarrenError(err, 'ERR_RPC_NAME'),
    )
    assert.throws(
      () => methods.register('echo', () => 1),
      (err) => {
        assert.ok(isWarrenError(err, 'ERR_RPC_NAME'))
        assert.equal(err.message, 'method "echo" is already registered')
        return true
      },
    )
  })
})
