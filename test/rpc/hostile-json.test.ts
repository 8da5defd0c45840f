/**
 * JSON that parses but cannot be used: nested deeper than the call stack allows to write it again, or (from a
 * method) not JSON at all. A hostile node's answer must not take its caller's daemon down, and no call may hang or
 * end without an error that names the cause.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Connection } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { isWarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { createNode, type WarrenLibp2p } from '../../src/p2p/create.ts'
import { callOn, exchange, openRpcStream } from '../../src/rpc/client.ts'
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../../src/rpc/json-depth.ts'
import { RpcMethods } from '../../src/rpc/methods.ts'
import { RpcServer } from '../../src/rpc/server.ts'
import { RPC_PROTOCOL, RpcCode, takeMessage } from '../../src/rpc/wire.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig } from '../support/daemon.ts'

/** Arrays `depth` levels deep, as text: `[[[…]]]`. */
const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth)
const DEEP = 300_000 // 600 KB of brackets, under the 1 MiB message limit; JSON.stringify fails at a few thousand

/** A uvarint-framed message body, as a hostile node writes it. */
function frame(text: string): Uint8Array {
  const body = new TextEncoder().encode(text)
  const prefix: number[] = []
  for (let n = body.length; ; n >>>= 7) {
    if (n < 0x80) {
      prefix.push(n)
      break
    }
    prefix.push((n & 0x7f) | 0x80)
  }
  return Uint8Array.from([...prefix, ...body])
}

/** A node whose RPC handler answers every request with `answer(id)` (text), read and written by hand. */
async function liar(answer: (id: unknown) => string): Promise<WarrenLibp2p> {
  const node = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
  await node.handle(RPC_PROTOCOL, (stream) => {
    const buf = new Uint8ArrayList()
    stream.addEventListener('message', (evt) => {
      buf.append(evt.data)
      for (let body = takeMessage(buf); body !== undefined; body = takeMessage(buf)) {
        const req = JSON.parse(new TextDecoder().decode(body)) as { id: unknown }
        stream.send(frame(answer(req.id)))
      }
    })
  })
  return node
}

describe('nesting depth', () => {
  it('counts arrays and objects, the outermost as 1, without recursing', () => {
    assert.equal(nestedDeeperThan(JSON.parse(nested(MAX_JSON_DEPTH))), false)
    assert.equal(nestedDeeperThan(JSON.parse(nested(MAX_JSON_DEPTH + 1))), true)
    assert.equal(nestedDeeperThan({ a: [{ b: 1 }] }, 3), false)
    assert.equal(nestedDeeperThan({ a: [{ b: {} }] }, 3), true)
    assert.equal(nestedDeeperThan('[[[['), false)
    assert.equal(nestedDeeperThan(JSON.parse(nested(DEEP))), true)
  })
})

describe('/warren/rpc/1.0.0 with JSON nested too deep', () => {
  let host: WarrenLibp2p
  let caller: WarrenLibp2p
  let conn: Connection
  let server: RpcServer

  before(async () => {
    host = await createNode({ privateKey: await generateNodeKey(), listen: ['/ip4/127.0.0.1/tcp/0'] })
    caller = await createNode({ privateKey: await generateNodeKey(), listen: [] })
    const methods = new RpcMethods({ allowed: () => new Set([caller.peerId.toString()]), public: () => new Set() })
    methods.register('echo', (params) => params)
    methods.register('deep', () => JSON.parse(nested(MAX_JSON_DEPTH + 1)))
    methods.register('cycle', () => {
      const o: Record<string, unknown> = {}
      o.self = o
      return o
    })
    methods.register('big', () => 10n)
    server = new RpcServer(host, methods, { timeoutMs: 5_000 })
    await server.start()
    conn = await caller.dial(host.getMultiaddrs()[0]!)
  })
  after(async () => {
    await server.stop()
    await Promise.all([host.stop(), caller.stop()])
  })

  it('a request nested deeper than 128 levels is -32600 with its id; the stream answers the next one', async () => {
    const stream = await openRpcStream(conn, AbortSignal.timeout(10_000))
    const buf = new Uint8ArrayList()
    const answers: unknown[] = []
    stream.addEventListener('message', (evt) => {
      buf.append(evt.data)
      for (let b = takeMessage(buf); b !== undefined; b = takeMessage(buf))
        answers.push(JSON.parse(new TextDecoder().decode(b)))
    })
    stream.send(frame(`{"jsonrpc":"2.0","id":"d","method":"echo","params":${nested(DEEP)}}`))
    stream.send(frame('{"jsonrpc":"2.0","id":"n","method":"echo","params":[1]}'))
    const deadline = Date.now() + 10_000
    while (answers.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    assert.deepEqual(answers, [
      { jsonrpc: '2.0', id: 'd', error: { code: RpcCode.INVALID_REQUEST, message: 'nested deeper than 128 levels' } },
      { jsonrpc: '2.0', id: 'n', result: [1] },
    ])
    await stream.close()
  })

  it('params nested too deep are refused by the caller before they leave (ERR_RPC_BAD_PARAMS)', async () => {
    await assert.rejects(callOn(conn, 'echo', JSON.parse(nested(MAX_JSON_DEPTH))), (err) => {
      assert.ok(isWarrenError(err, 'ERR_RPC_BAD_PARAMS'))
      assert.equal(err.message, 'the call cannot be sent: the message is nested deeper than 128 levels')
      assert.equal(err.hint, 'Params must be plain JSON (no cycles, no BigInt) nested at most 128 levels deep.')
      return true
    })
  })

  it('params that are not JSON (a cycle) are refused the same way', async () => {
    const o: Record<string, unknown> = {}
    o.self = o
    await assert.rejects(callOn(conn, 'echo', o), (err) => {
      assert.ok(isWarrenError(err, 'ERR_RPC_BAD_PARAMS'))
      assert.equal(
        err.message,
        'the call cannot be sent: the message cannot be sent as JSON: Converting circular structure to JSON',
      )
      return true
    })
  })

  for (const [method, why] of [
    ['deep', 'the message is nested deeper than 128 levels'],
    ['cycle', 'the message cannot be sent as JSON: Converting circular structure to JSON'],
    ['big', 'the message cannot be sent as JSON: Do not know how to serialize a BigInt'],
  ] as const) {
    it(`a method whose result cannot be sent (${method}) answers -32603 at once, saying why`, async () => {
      const started = Date.now()
      await assert.rejects(callOn(conn, method), (err) => {
        assert.ok(isWarrenError(err, 'ERR_RPC_FAILED'))
        assert.equal(
          err.message,
          `node ${host.peerId} answered "${method}" with error -32603: the answer could not be sent: ${why}`,
        )
        return true
      })
      assert.ok(Date.now() - started < 4_000, 'the caller waited for its time-out instead of an answer')
    })
  }

  it("an answer nested too deep is the answering node's protocol error (ERR_PROTOCOL)", async () => {
    const evil = await liar((id) => `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${nested(DEEP)}}`)
    try {
      const c = await caller.dial(evil.getMultiaddrs()[0]!)
      await assert.rejects(callOn(c, '_ping'), (err) => {
        assert.ok(isWarrenError(err, 'ERR_PROTOCOL'))
        assert.equal(err.message, `node ${evil.peerId}: the answer is nested deeper than 128 levels`)
        return true
      })
      const stream = await openRpcStream(c, AbortSignal.timeout(10_000))
      await assert.rejects(exchange(stream, { jsonrpc: '2.0', id: 1, method: '_ping' }), (err) => {
        assert.ok(isWarrenError(err, 'ERR_PROTOCOL'))
        assert.equal(err.message, 'node the other side: the answer is nested deeper than 128 levels')
        return true
      })
    } finally {
      await evil.stop()
    }
  })
})

describe('a daemon calling a node that lies in its answers (warren up)', () => {
  let evil: WarrenLibp2p
  let daemon: TestDaemon
  let home: Awaited<ReturnType<typeof makeHome>>
  let result = nested(DEEP) // the result every answer carries, as JSON text

  before(async () => {
    evil = await liar((id) => `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${result}}`)
    home = await makeHome(testConfig({}))
    daemon = await TestDaemon.start(home)
  })
  after(async () => {
    await daemon.stop()
    await removeHome(home)
    await evil.stop()
  })

  /** One request line on a new API connection; resolves with the answer line. */
  const askLine = (text: string): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const s = connect(home.socket)
      let got = ''
      s.on('data', (b) => {
        got += b.toString()
        if (got.includes('\n')) {
          s.destroy()
          resolve(JSON.parse(got) as Record<string, unknown>)
        }
      })
      s.on('error', reject)
      s.on('close', () => reject(new Error(`the API closed without an answer (got ${JSON.stringify(got)})`)))
      s.write(`${text}\n`)
    })

  it('the call fails with ERR_PROTOCOL naming the node, and the daemon goes on', async () => {
    const c = await daemon.client()
    try {
      await assert.rejects(
        c.callNode(evil.peerId.toString(), '_ping', undefined, { addrs: [evil.getMultiaddrs()[0]!.toString()] }),
        (err) => {
          assert.ok(isWarrenError(err, 'ERR_PROTOCOL'))
          assert.equal(err.message, `node ${evil.peerId}: the answer is nested deeper than 128 levels`)
          return true
        },
      )
      assert.equal((await c.status()).id, (await daemon.identity()).id)
    } finally {
      c.close()
    }
    assert.equal(daemon.child.exitCode, null)
  })

  it('the local API refuses params nested too deep (-32602), on lines and over HTTP', async () => {
    const answer = await askLine(`{"jsonrpc":"2.0","id":3,"method":"status","params":${nested(DEEP)}}`)
    assert.equal(answer.id, 3)
    assert.deepEqual((answer.error as { code: number; message: string }).code, -32602)
    assert.equal((answer.error as { message: string }).message, 'params nested deeper than 128 levels')
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const s = connect(home.socket)
      const body = `{"jsonrpc":"2.0","id":4,"method":"status","params":${nested(DEEP)}}`
      let got = ''
      s.on('data', (b) => {
        got += b.toString()
      })
      s.on('end', () => resolve({ status: Number(got.split(' ')[1]), body: got.slice(got.indexOf('\r\n\r\n') + 4) }))
      s.on('error', reject)
      s.write(
        `POST /jsonrpc HTTP/1.1\r\nHost: warren\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      )
    })
    assert.equal(res.status, 200)
    const parsed = JSON.parse(res.body) as { id: number; error: { code: number; message: string } }
    assert.deepEqual(
      [parsed.id, parsed.error.code, parsed.error.message],
      [4, -32602, 'params nested deeper than 128 levels'],
    )
    assert.equal(daemon.child.exitCode, null)
  })

  for (const [what, services, why] of [
    ['a service name that is no DNS label', [{ name: 'a b', type: 'tcp' }], '0.name: is not a service name'],
    ['a type it does not know', [{ name: 'web', type: 'udp' }], '0.type: Invalid option: expected one of "tcp"|"http"'],
    ['no list', { web: 'tcp' }, 'Invalid input: expected array, received object'],
  ] as const) {
    it(`warren ls: ${what} is ERR_PROTOCOL (exit 5), not a table`, async () => {
      result = JSON.stringify(services)
      const r = await runCli(['ls', evil.peerId.toString(), '--addr', evil.getMultiaddrs()[0]!.toString()], {
        home: home.dir,
      })
      assert.equal(r.code, 5)
      assert.equal(r.stdout, '')
      assert.match(
        r.stderr,
        new RegExp(`^warren: node ${evil.peerId} answered _services wrongly: ${why.replace(/[|.]/g, '\\$&')}\n`),
      )
    })
  }

  it("warren ls: a description's control characters are printed escaped, not sent to the terminal", async () => {
    result = JSON.stringify([{ name: 'web', type: 'http', description: 'wiki\u001b]0;owned\u0007\r\nfake line' }])
    const r = await runCli(['ls', evil.peerId.toString(), '--addr', evil.getMultiaddrs()[0]!.toString()], {
      home: home.dir,
    })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, 'SERVICE  TYPE  DESCRIPTION\nweb      http  wiki\\x1b]0;owned\\x07\\r\\nfake line\n')
  })

  it('warren call: a result with C1 controls and bidi overrides is printed as JSON escapes', async () => {
    result = JSON.stringify({ note: 'a\u009b2J\u202eb\u0007' })
    const r = await runCli(['call', `${evil.peerId}.anything`, '--addr', evil.getMultiaddrs()[0]!.toString()], {
      home: home.dir,
    })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, '{\n  "note": "a\\u009b2J\\u202eb\\u0007"\n}\n')
    assert.deepEqual(JSON.parse(r.stdout), { note: 'a\u009b2J\u202eb\u0007' })
  })
})
