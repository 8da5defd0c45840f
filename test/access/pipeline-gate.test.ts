/**
 * The full path's bound on pipelined requests under way per client connection (src/access/pipeline-gate.ts).
 *
 * On Node's HTTP server with a raw client: of 40 requests written at once, 16 start and the connection is paused;
 * each answer lets the next one start, and all 40 come back whole and in order. Requests still waiting when their
 * client goes are never started.
 *
 * Past the bound on waiting requests the connection is closed and none of them starts.
 *
 * Through real daemons on the full path (gateway and HTTP proxy): 40 pipelined requests the service never answers
 * reach it 16 at a time, not 40 (each had opened a service stream), and none more arrive once the client goes;
 * 5,000 in one write get the connection closed, with at most 16 at the service; 40 pipelined 256 KiB downloads, read only
 * after a pause, all come back whole (SHA-256) and in order.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { PIPELINE_DEPTH, PipelineGate } from '../../src/access/pipeline-gate.ts'
import { eventually } from '../support/eventually.ts'
import { useChaosPair } from '../support/http-chaos.ts'
import { ByteSource, listen } from '../support/transfer.ts'

const N = 40
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** Splits what a connection received into Content-Length responses: status line and body each. */
function responses(bytes: Buffer): { list: { status: string; body: Buffer }[]; rest: number } {
  const list: { status: string; body: Buffer }[] = []
  let at = 0
  for (;;) {
    const end = bytes.indexOf('\r\n\r\n', at)
    if (end < 0) break
    const head = bytes.subarray(at, end).toString('latin1')
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)
    if (length === null || end + 4 + Number(length[1]) > bytes.length) break
    list.push({
      status: head.slice(0, head.indexOf('\r\n')),
      body: bytes.subarray(end + 4, end + 4 + Number(length[1])),
    })
    at = end + 4 + Number(length[1])
  }
  return { list, rest: bytes.length - at }
}

/** Everything a connection receives until it closes (20 s at most). */
async function received(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  s.on('data', (d: Buffer) => chunks.push(d))
  const timer = setTimeout(() => s.destroy(new Error('no close within 20 s')), 20_000)
  try {
    await once(s, 'close')
  } finally {
    clearTimeout(timer)
  }
  return Buffer.concat(chunks)
}

describe('PipelineGate', () => {
  it('refuses a depth below 1 and a negative waiting bound', () => {
    assert.throws(() => new PipelineGate({ depth: 0 }), {
      name: 'RangeError',
      message: 'pipeline depth must be ≥ 1, got 0',
    })
    assert.throws(() => new PipelineGate({ depth: 1.5 }), {
      name: 'RangeError',
      message: 'pipeline depth must be ≥ 1, got 1.5',
    })
    assert.throws(() => new PipelineGate({ maxWaiting: -1 }), {
      name: 'RangeError',
      message: 'pipeline waiting requests must be ≥ 0, got -1',
    })
  })

  /** Node's HTTP server behind a gate: each request held until the test answers it. */
  async function heldServer(opts: ConstructorParameters<typeof PipelineGate>[0] = {}): Promise<{
    port: number
    started: string[]
    held: ServerResponse[]
    gate: PipelineGate
    close(): Promise<void>
  }> {
    const gate = new PipelineGate(opts)
    const started: string[] = []
    const held: ServerResponse[] = []
    const server = createServer((req, res) => {
      req.resume()
      gate.admit(req.socket, res, () => {
        started.push(req.url ?? '')
        held.push(res)
      })
    })
    const l = await listen(server as never)
    return { port: l.port, started, held, gate, close: l.close }
  }

  it(`starts ${PIPELINE_DEPTH} of ${N} pipelined requests, the next as each is answered, all in order`, async () => {
    const s = await heldServer()
    try {
      const c = connect(s.port, '127.0.0.1')
      const all = received(c)
      const paths = Array.from({ length: N }, (_, k) => `/r/${k}`)
      c.write(
        paths
          .map((p, k) => `GET ${p} HTTP/1.1\r\nHost: x\r\n${k === N - 1 ? 'Connection: close\r\n' : ''}\r\n`)
          .join(''),
      )
      await eventually('the first requests started', () => s.started.length === PIPELINE_DEPTH)
      await sleep(200)
      assert.deepEqual(s.started, paths.slice(0, PIPELINE_DEPTH), 'no more than the depth, the first ones')
      // answered one at a time, in order: a turn frees only when a response has closed
      for (let k = 0; k < N; k++) {
        await eventually(`request ${k} started`, () => s.held.length > k)
        assert.ok(s.started.length <= k + PIPELINE_DEPTH, `${s.started.length} started with ${k} answered`)
        const body = `answer ${k}`
        s.held[k]!.writeHead(200, { 'content-length': body.length }).end(body)
      }
      const { list, rest } = responses(await all)
      assert.deepEqual(
        list.map((r) => `${r.status} ${r.body}`),
        paths.map((_, k) => `HTTP/1.1 200 OK answer ${k}`),
      )
      assert.equal(rest, 0)
      assert.deepEqual(s.started, paths)
    } finally {
      await s.close()
    }
  })

  it('never starts requests still waiting when their client goes', async () => {
    const s = await heldServer()
    try {
      const c = connect(s.port, '127.0.0.1')
      c.on('error', () => {})
      c.write(Array.from({ length: N }, (_, k) => `GET /r/${k} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''))
      await eventually('the first requests started', () => s.started.length === PIPELINE_DEPTH)
      c.destroy()
      await eventually('the server saw the client go', () => s.held.every((r) => r.closed))
      await sleep(200)
      assert.equal(s.started.length, PIPELINE_DEPTH)
    } finally {
      await s.close()
    }
  })
  it('closes a connection with more requests waiting than the bound, and starts none of them', async () => {
    let overflows = 0
    const s = await heldServer({ maxWaiting: 8, onOverflow: () => overflows++ })
    try {
      const c = connect(s.port, '127.0.0.1')
      c.on('error', () => {})
      const all = received(c)
      c.write(Array.from({ length: PIPELINE_DEPTH + 9 }, (_, k) => `GET /r/${k} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''))
      assert.equal((await all).length, 0, 'closed with nothing answered')
      assert.equal(overflows, 1)
      await sleep(200)
      assert.equal(s.started.length, PIPELINE_DEPTH)
    } finally {
      await s.close()
    }
  })
})

describe('pipelined requests on the full path of the access port', () => {
  const chaos = useChaosPair()

  for (const form of ['gateway', 'HTTP proxy'] as const) {
    const line = (access: string, path: string): string =>
      form === 'gateway'
        ? `GET /http/a/web${path} HTTP/1.1\r\nHost: ${access}\r\n`
        : `GET http://web.a.warren${path} HTTP/1.1\r\nHost: web.a.warren\r\n`

    it(`${form}: requests reach the service ${PIPELINE_DEPTH} at a time, and none once the client went`, async () => {
      const access = chaos.pair().full
      const target = chaos.target()
      const before = target.received()
      const c = connect(Number(access.slice(access.lastIndexOf(':') + 1)), '127.0.0.1')
      c.on('error', () => {})
      c.write(Array.from({ length: N }, () => `${line(access, '/hang')}\r\n`).join(''))
      await eventually('the service got the first requests', () => target.received() - before === PIPELINE_DEPTH)
      await sleep(500)
      assert.equal(target.received() - before, PIPELINE_DEPTH, 'the others wait at the access port')
      assert.equal(target.pending(), PIPELINE_DEPTH)
      c.destroy()
      await eventually('the service saw the requests go', () => target.pending() === 0)
      await sleep(300)
      assert.equal(target.received() - before, PIPELINE_DEPTH, 'no waiting request started after the client went')
    })

    it(`${form}: 5,000 pipelined requests in one write close the connection; at most 16 reach the service`, async () => {
      const access = chaos.pair().full
      const target = chaos.target()
      const before = target.received()
      const c = connect(Number(access.slice(access.lastIndexOf(':') + 1)), '127.0.0.1')
      c.on('error', () => {})
      let got = 0
      c.on('data', (d: Buffer) => {
        got += d.length
      })
      // a reset is the expected end: events.once would reject on the 'error' that comes with it
      const closed = new Promise((resolve) => c.once('close', resolve))
      c.write(`${line(access, '/hang')}\r\n`.repeat(5_000))
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        c.destroy()
      }, 10_000)
      await closed
      clearTimeout(timer)
      assert.equal(timedOut, false, 'the daemon closed the connection')
      assert.equal(got, 0, 'nothing answered')
      await eventually('the service saw the requests go', () => target.pending() === 0)
      // the first 16 may have been cut before they reached it: all 5,000 came in one read
      assert.ok(target.received() - before <= PIPELINE_DEPTH, `${target.received() - before} reached the service`)
    })

    it(`${form}: ${N} pipelined downloads read after a pause come back whole and in order`, async () => {
      const access = chaos.pair().full
      const size = 256 * 1024
      const c = connect(Number(access.slice(access.lastIndexOf(':') + 1)), '127.0.0.1')
      const all = received(c)
      c.pause()
      c.write(
        Array.from(
          { length: N },
          (_, k) => `${line(access, `/blob/${size}/${k}`)}${k === N - 1 ? 'Connection: close\r\n' : ''}\r\n`,
        ).join(''),
      )
      await sleep(500)
      c.resume()
      const { list, rest } = responses(await all)
      assert.deepEqual(
        list.map((r) => `${r.status} ${sha(r.body)}`),
        Array.from({ length: N }, (_, k) => `HTTP/1.1 200 OK ${ByteSource.digest(size, k)}`),
      )
      assert.equal(rest, 0)
    })
  }
})
