/**
 * Prometheus metrics at /metrics on the node's own origin: bytes per service, peer and direction, streams open,
 * stream ends by cause, dial time, paths by kind, the open-file budget; other Hosts and cross-site requests are refused.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { runCli } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'
import { hashServer, type TestServer } from '../support/servers.ts'
import { ByteSource, MiB } from '../support/transfer.ts'
import { startUiPair, type UiPair } from './ui-pair.ts'

/** GET on `addr` with these headers: status and body. */
function get(
  addr: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; type: string }> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))]
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, headers: { host: addr, ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          body: Buffer.concat(chunks).toString('utf8'),
          type: String(res.headers['content-type']),
        }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

/** The value of one sample line `name{labels} value`, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const inner = line.slice(name.length + 1, line.lastIndexOf('}'))
    const have = inner.split(',')
    if (want.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

/** The value of a sample without labels, or undefined. */
function plain(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

describe('metrics', () => {
  let pair: UiPair
  let server: TestServer
  before(async () => {
    server = await hashServer()
    pair = await startUiPair({ hash: `/tcp/${server.port}` })
  })
  after(async () => {
    await pair?.close()
    await server?.close()
  })

  it('count a transfer on both sides in the Prometheus text format', async () => {
    const size = 2 * MiB
    const input = new ByteSource(size, 3).next(size)!
    const r = await runCli(['connect', 'a/hash'], { home: pair.b.home.dir, input })
    assert.equal(r.code, 0, r.stderr)
    const answer = `${size} ${createHash('sha256').update(input).digest('hex')}`
    assert.equal(r.stdout, answer)

    let a = ''
    await eventually(async () => {
      a = (await get(pair.a.ui, '/metrics')).body
      return sample(a, 'warren_stream_ends_total', { direction: 'incoming', service: 'hash', cause: 'ok' }) === 1
    })
    const inLabels = { direction: 'incoming', service: 'hash', peer: pair.b.id }
    assert.equal(sample(a, 'warren_stream_bytes_total', { ...inLabels, way: 'in' }), size)
    assert.equal(sample(a, 'warren_stream_bytes_total', { ...inLabels, way: 'out' }), answer.length)
    assert.equal(sample(a, 'warren_streams_open', { direction: 'incoming', service: 'hash' }), 0)
    assert.equal(sample(a, 'warren_paths', { kind: 'direct' }), 1)
    // the descriptor budget: the limit of A's own process, the stream's target connection given back, no refusal
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pair.a.d.child.pid}/limits`, 'utf8'))
    if (limit !== null) assert.equal(plain(a, 'warren_open_files_limit'), Number(limit[1]))
    assert.equal(plain(a, 'warren_local_connections'), 0)
    assert.equal(plain(a, 'warren_file_limit_refusals_total'), 0)
    assert.match(a, /^# TYPE warren_file_limit_refusals_total counter$/m)

    let b = ''
    await eventually(async () => {
      b = (await get(pair.b.ui, '/metrics')).body
      return sample(b, 'warren_stream_ends_total', { direction: 'outgoing', service: 'hash', cause: 'ok' }) === 1
    })
    const outLabels = { direction: 'outgoing', service: 'hash', peer: pair.a.id }
    assert.equal(sample(b, 'warren_stream_bytes_total', { ...outLabels, way: 'out' }), size)
    assert.equal(sample(b, 'warren_stream_bytes_total', { ...outLabels, way: 'in' }), answer.length)
    assert.equal(sample(b, 'warren_dial_seconds_count', { result: 'ok' }), 1)
    assert.match(b, /^# TYPE warren_dial_seconds histogram$/m)
    assert.equal(sample(b, 'warren_paths', { kind: 'direct' }), 1)

    const refused = await runCli(['connect', 'a/nope'], { home: pair.b.home.dir })
    assert.equal(refused.code, 5)
    await eventually(async () => {
      const text = (await get(pair.a.ui, '/metrics')).body
      return (
        sample(text, 'warren_stream_ends_total', { direction: 'incoming', service: '(unknown)', cause: 'refused' }) ===
        1
      )
    })
  })

  it('answer with the Prometheus content type, on warren.localhost and localhost too', async () => {
    const port = pair.a.ui.slice(pair.a.ui.lastIndexOf(':') + 1)
    for (const host of [pair.a.ui, `warren.localhost:${port}`, `localhost:${port}`]) {
      const res = await get(pair.a.ui, '/metrics', { host })
      assert.equal(res.status, 200, host)
      assert.match(res.type, /^text\/plain; version=0\.0\.4/)
    }
  })

  it('refuse another Host (DNS rebinding) and cross-site browser requests', async () => {
    const port = pair.a.ui.slice(pair.a.ui.lastIndexOf(':') + 1)
    const other = await get(pair.a.ui, '/metrics', { host: `evil.example:${port}` })
    assert.equal(other.status, 403)
    assert.equal(
      other.body,
      `refused: Host "evil.example:${port}" is not this server (use http://warren.localhost:${port}/)\n`,
    )
    const site = await get(pair.a.ui, '/metrics', { 'sec-fetch-site': 'cross-site' })
    assert.equal(site.status, 403)
    assert.equal(site.body, 'refused: a request from another site (Sec-Fetch-Site: cross-site)\n')
    const origin = await get(pair.a.ui, '/status.json', { origin: 'http://evil.example' })
    assert.equal(origin.status, 403)
    assert.equal(origin.body, 'refused: a request from http://evil.example\n')
    const same = await get(pair.a.ui, '/status.json', {
      origin: `http://${pair.a.ui}`,
      'sec-fetch-site': 'same-origin',
    })
    assert.equal(same.status, 200)
    assert.equal(JSON.parse(same.body).id, pair.a.id)
  })
})
