/**
 * The local API's two framings on one Unix socket: JSON lines, and HTTP (`POST /jsonrpc`) when a connection starts
 * with an HTTP method. Driven with curl, as users do; the handler echoes so every answer can be checked exactly. A
 * line client runs at most 64 calls at once, and one that does not read its answers is read no further.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { ApiServer } from '../../src/daemon/api-server.ts'
import { WarrenError } from '../../src/errors.ts'
import { checkStopsReading } from '../support/transfer.ts'

const run = promisify(execFile)

describe('the local API over HTTP on its Unix socket', () => {
  let dir: string
  let api: ApiServer
  let running = 0
  let mostAtOnce = 0
  const sock = (): string => join(dir, 'api.sock')

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-api-http-'))
    api = await ApiServer.listen(
      sock(),
      {
        call: async (method, params) => {
          if (method === 'fail') throw new WarrenError('ERR_UNKNOWN_PEER', 'no node "x"', { hint: 'check the name' })
          if (method === 'slow') {
            running++
            mostAtOnce = Math.max(mostAtOnce, running)
            await new Promise((r) => setTimeout(r, 5))
            running--
          }
          return { method, params }
        },
        openStream: async () => {
          throw new Error('not used')
        },
      },
      { home: dir },
    )
  })
  after(async () => {
    await api.close()
    await rm(dir, { recursive: true, force: true })
  })

  const curl = async (...args: string[]): Promise<{ status: number; body: string }> => {
    const { stdout } = await run('curl', ['-sS', '--unix-socket', sock(), '-w', '\n%{http_code}', ...args])
    const i = stdout.lastIndexOf('\n')
    return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) }
  }

  it('POST /jsonrpc: one request, one answer', async () => {
    const r = await curl('http://warren/jsonrpc', '-d', '{"jsonrpc":"2.0","id":1,"method":"laptop._ping","params":{}}')
    assert.equal(r.status, 200)
    assert.deepEqual(JSON.parse(r.body), {
      jsonrpc: '2.0',
      id: 1,
      result: { method: 'laptop._ping', params: {} },
    })
  })

  it('a WarrenError comes back as a JSON-RPC error with code, message and hint in data', async () => {
    const r = await curl('http://warren/jsonrpc', '-d', '{"jsonrpc":"2.0","id":"a","method":"fail"}')
    assert.equal(r.status, 200)
    const body = JSON.parse(r.body)
    assert.equal(body.error.code, -32000)
    assert.equal(body.error.data.code, 'ERR_UNKNOWN_PEER')
    assert.equal(body.error.data.hint, 'check the name')
  })

  it('a batch, with a notification that gets no answer', async () => {
    const r = await curl(
      'http://warren/jsonrpc',
      '-d',
      '[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"},{"jsonrpc":"2.0","id":3,"method":"c"}]',
    )
    assert.equal(r.status, 200)
    assert.deepEqual(
      JSON.parse(r.body).map((a: { id: number }) => a.id),
      [1, 3],
    )
  })

  it('refuses what is not a request: bad JSON 400, wrong path 404, GET 405, web pages 403, stream.open', async () => {
    const bad = await curl('http://warren/jsonrpc', '-d', '{nope')
    assert.equal(bad.status, 400)
    assert.equal(JSON.parse(bad.body).error.code, -32700)
    assert.equal((await curl('http://warren/other', '-d', '{}')).status, 404)
    assert.equal((await curl('http://warren/jsonrpc')).status, 405)
    const web = await curl('http://warren/jsonrpc', '-H', 'Origin: https://evil.example', '-d', '{}')
    assert.equal(web.status, 403)
    assert.equal(JSON.parse(web.body).error.message, 'the local API does not answer web pages (Origin header)')
    const stream = await curl('http://warren/jsonrpc', '-d', '{"jsonrpc":"2.0","id":9,"method":"stream.open"}')
    assert.equal(JSON.parse(stream.body).error.message, 'stream.open needs the line protocol, not HTTP')
  })

  it('the line protocol runs at most 64 calls of one connection at once; every request is answered', async () => {
    const s = createConnection(sock())
    const ids = new Set<number>()
    let got = ''
    const all = new Promise<void>((resolve, reject) => {
      s.on('data', (d) => {
        got += d
        for (let nl = got.indexOf('\n'); nl >= 0; nl = got.indexOf('\n')) {
          ids.add((JSON.parse(got.slice(0, nl)) as { id: number }).id)
          got = got.slice(nl + 1)
        }
        if (ids.size === 500) resolve()
      })
      s.on('error', reject)
    })
    mostAtOnce = 0
    s.write(Array.from({ length: 500 }, (_, i) => `{"jsonrpc":"2.0","id":${i},"method":"slow"}\n`).join(''))
    await all
    s.destroy()
    assert.equal(mostAtOnce, 64)
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      Array.from({ length: 500 }, (_, i) => i),
    )
  })

  it('a line client that reads no answers is read no further once they fill the socket; reading resumes it', async () => {
    const s = createConnection(sock())
    await once(s, 'connect')
    s.pause() // reads nothing
    const piece = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"id"}\n'.repeat(1600))
    await checkStopsReading(s, piece, 'requests')
    s.destroy()
  })

  it('the line protocol still works on the same socket', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = createConnection(sock())
      let got = ''
      s.on('data', (d) => {
        got += d
      })
      s.on('end', () => resolve(got))
      s.on('error', reject)
      s.end('{"jsonrpc":"2.0","id":5,"method":"id"}\n')
    })
    assert.deepEqual(JSON.parse(answer), { jsonrpc: '2.0', id: 5, result: { method: 'id' } })
  })
})
