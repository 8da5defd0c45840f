/**
 * Honest endings through the access port: a transfer cut anywhere on the far side must reach the client as an
 * error, never as a clean, complete response. Real daemons (a serving node `a`; `b` with the gateway's fast path,
 * `c` with the full path only), real curl, a target that cuts its connections on purpose (cut-server.ts).
 *
 * - The target resets or closes its socket mid-body (Content-Length, chunked, and close-delimited bodies): curl
 *   exits 18 (transfer closed with bytes remaining) or 56 (connection reset), with fewer bytes than the body; the
 *   gateway's own bytes show a body short of its Content-Length or a chunked body without its last chunk.
 * - The serving daemon is killed (SIGKILL) or stopped (SIGTERM) while slow readers are mid-body on every path.
 * - The client daemon is killed mid-upload: the serving node resets the target's connection.
 * - An upload is cut mid-body by the client (a reset through a tunnel, a FIN mid-body through the gateway and
 *   the proxy): the target sees its connection reset (a `"type": "http"` target: closed) before the body ended.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type AccessPath, curlRun, curlTarget, nodeRequest } from '../support/access-clients.ts'
import { type CutServer, cutServer } from '../support/cut-server.ts'
import { type DaemonPair as AccessLab, startDaemonPair as startAccessLab } from '../support/daemon-pair.ts'
import { eventually } from '../support/eventually.ts'
import { ByteSource, MiB } from '../support/transfer.ts'

interface Row {
  name: string
  how: AccessPath
  port: 'fast' | 'full'
  service: 'cut' | 'hcut'
}

const ROWS: Row[] = [
  { name: 'SOCKS5', how: 'socks', port: 'fast', service: 'cut' },
  { name: 'CONNECT', how: 'connect', port: 'fast', service: 'cut' },
  { name: 'proxy absolute form, fast path', how: 'proxy', port: 'fast', service: 'cut' },
  { name: 'proxy absolute form, full path', how: 'proxy', port: 'full', service: 'cut' },
  { name: 'gateway, fast path', how: 'gateway', port: 'fast', service: 'cut' },
  { name: 'gateway Kubo form, fast path', how: 'kubo', port: 'fast', service: 'cut' },
  { name: 'gateway, full path', how: 'gateway', port: 'full', service: 'cut' },
  { name: '"type": "http" service, fast path', how: 'gateway', port: 'fast', service: 'hcut' },
  { name: '"type": "http" service, full path', how: 'gateway', port: 'full', service: 'hcut' },
]

const CUTS = ['length/rst', 'length/fin', 'chunked/rst', 'chunked/fin', 'close/rst']
const SIZE = 4 * MiB
const AT = MiB

/** curl's exit codes for a transfer that ended early: 18 (closed with bytes remaining), 56 (receive failure). */
const CUT_CODES = [18, 56]

describe('honest endings through the access port', () => {
  let lab: AccessLab
  let target: CutServer
  before(async () => {
    target = await cutServer()
    lab = await startAccessLab(
      { cut: `/tcp/${target.port}`, hcut: { target: `/tcp/${target.port}`, type: 'http' } },
      true,
    )
  })
  after(async () => {
    await lab?.close()
    await target?.close()
  })
  const accessFor = (row: Row): string => (row.port === 'fast' ? lab.fast : lab.full)

  describe('the target cuts its connection mid-body', { concurrency: true }, () => {
    for (const row of ROWS) {
      it(`${row.name}: curl sees every cut (${CUTS.join(', ')})`, async () => {
        for (const cut of CUTS) {
          const r = await curlRun(curlTarget(row.how, accessFor(row), row.service, `/cut/${SIZE}/${AT}/${cut}`), {
            timeoutMs: 30_000,
          })
          const what = `${row.name}, ${cut}: curl ${r.code} after ${r.bytes} bytes: ${r.stderr.trim()}`
          assert.ok(CUT_CODES.includes(r.code ?? -1), what)
          assert.ok(r.bytes < SIZE, what)
        }
      })
    }
  })

  it('the gateway ends a cut body short (fast and full path): no last chunk, no full Content-Length, then closes', async () => {
    assert.equal(chunkedComplete(Buffer.from('3\r\nabc\r\n0\r\n\r\n')), true) // the check itself
    assert.equal(chunkedComplete(Buffer.from('3\r\nabc\r\n')), false)
    for (const access of [lab.fast, lab.full]) {
      for (const cut of ['length/rst', 'length/fin', 'chunked/rst', 'chunked/fin', 'close/rst']) {
        const raw = await rawGet(access, `/http/a/cut/cut/${SIZE}/${AT}/${cut}`)
        const what = `${access === lab.fast ? 'fast' : 'full'} path, ${cut}`
        const i = raw.indexOf('\r\n\r\n')
        const head = raw.subarray(0, i).toString('latin1')
        assert.match(head, /^HTTP\/1\.1 200 /, what)
        const body = raw.subarray(i + 4)
        const length = /\r\ncontent-length: *(\d+)/i.exec(head)
        if (length !== null) assert.ok(body.length < Number(length[1]), `${what}: ${body.length} of ${length[1]}`)
        else {
          assert.match(head, /\r\ntransfer-encoding: chunked/i, what)
          assert.equal(chunkedComplete(body), false, `${what}: the chunked body has its last chunk`)
        }
      }
    }
  })

  it('each cut is logged at warn: who, bytes each way, duration, reason', () => {
    const path = `/cut/${SIZE}/${AT}/length/rst`
    const line = (prefix: string): RegExp =>
      new RegExp(
        ` warn {2}${prefix}: \\d+ bytes up, [1-9]\\d* down, \\d+ ms, ended abnormally: [^\\n]+`.replaceAll('/', '\\/'),
      )
    const http = (p: string): string => `HTTP GET ${p.replaceAll('.', '\\.')} to service "cut" on node ${lab.aId}`
    assert.match(lab.b.stderr, line(http(`/http/a/cut${path}`)))
    assert.match(lab.c!.stderr, line(http(`/http/a/cut${path}`)))
    assert.match(lab.b.stderr, / warn {2}tunnel to cut\.a\.warren: \d+ bytes in, \d+ out, \d+ ms, ended abnormally: /)
  })

  describe('an upload cut mid-body by the client', { concurrency: true }, () => {
    for (const row of ROWS) {
      it(`${row.name}: the target sees its connection end before the body`, async () => {
        const id = `${row.how}-${row.port}-${row.service}`
        const req = nodeRequest(row.how, accessFor(row), row.service, '/sink', {
          method: 'POST',
          headers: { 'content-length': 8 * MiB, 'x-id': id },
        })
        req.on('error', () => {})
        const src = new ByteSource(8 * MiB)
        for (let i = 0; i < 4; i++) req.write(src.next()!)
        await target.received(id, MiB)
        // a tunnel carries bytes, not requests: the client resets it; HTTP paths see a FIN before the body's end
        const tunnel = row.how === 'socks' || row.how === 'connect'
        if (tunnel) req.socket!.resetAndDestroy()
        else req.destroy()
        const r = await target.upload(id)
        assert.ok(r.bytes < 8 * MiB)
        if (row.service === 'cut') {
          // the stream is reset, and so the service's TCP connection
          assert.equal(r.ending, 'ECONNRESET', `${row.name}: the target saw ${r.ending} after ${r.bytes} bytes`)
        } else {
          // "type": "http": the host's HTTP client gives up its connection to the target mid-body
          assert.notEqual(r.ending, 'end', `${row.name}: the target saw a clean end after ${r.bytes} bytes`)
        }
      })
    }
  })

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    it(`the serving daemon ends (${signal}) under slow readers on every path: every curl fails`, async () => {
      const got = ROWS.map(() => 0)
      const runs = ROWS.map((row, i) =>
        curlRun(['--limit-rate', '1M', ...curlTarget(row.how, accessFor(row), row.service, `/blob/${64 * MiB}`)], {
          timeoutMs: 40_000,
          onBytes: (n) => {
            got[i] = n
          },
        }),
      )
      // every transfer under way: each curl has bytes of its body
      await eventually(() => got.every((n) => n > 0), { timeoutMs: 20_000, message: 'every curl receiving' })
      await lab.a.stop(signal)
      const results = await Promise.all(runs)
      for (const [i, r] of results.entries()) {
        const what = `${ROWS[i]!.name}: curl ${r.code} after ${r.bytes} bytes: ${r.stderr.trim()}`
        assert.ok(CUT_CODES.includes(r.code ?? -1), what)
        assert.ok(r.bytes > 0 && r.bytes < 64 * MiB, what)
      }
      await lab.restartA()
    })
  }

  // last: it leaves `b` dead
  it('the client daemon dies (SIGKILL) mid-upload: the target sees its connection end before the body', async () => {
    const rows = ROWS.filter((r) => r.port === 'fast' && (r.how === 'socks' || r.how === 'gateway'))
    const reqs = rows.map((row) => {
      const id = `killed-${row.how}-${row.service}`
      const req = nodeRequest(row.how, lab.fast, row.service, '/sink', {
        method: 'POST',
        headers: { 'content-length': 8 * MiB, 'x-id': id },
      })
      req.on('error', () => {})
      const src = new ByteSource(8 * MiB)
      for (let i = 0; i < 4; i++) req.write(src.next()!)
      const answer = new Promise<string>((resolve) => {
        req.once('response', (res) => resolve(`answered ${res.statusCode} ${res.headers['x-warren-error'] ?? ''}`))
      })
      return { row, id, req, answer }
    })
    // every upload is under way at the target before its node goes
    for (const { row, id, answer } of reqs) {
      const state = await Promise.race([target.received(id, MiB).then(() => 'under way'), answer])
      assert.equal(state, 'under way', row.name)
    }
    await lab.b.stop('SIGKILL')
    for (const { row, id, req } of reqs) {
      const r = await target.upload(id)
      req.destroy()
      assert.ok(r.bytes < 8 * MiB)
      if (row.service === 'cut') assert.equal(r.ending, 'ECONNRESET', `${row.name}: the target saw ${r.ending}`)
      else assert.notEqual(r.ending, 'end', `${row.name}: the target saw a clean end after ${r.bytes} bytes`)
    }
  })
})

/** Sends a GET on a fresh connection and returns every byte received until the connection closed. */
function rawGet(access: string, path: string): Promise<Buffer> {
  const i = access.lastIndexOf(':')
  const socket = connect({ host: access.slice(0, i), port: Number(access.slice(i + 1)) })
  const got: Buffer[] = []
  socket.on('data', (d: Buffer) => got.push(d))
  socket.on('error', () => {})
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${access}\r\n\r\n`)
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(got))))
}

/** True when `body` holds a whole chunked encoding, up to and with its last (0-size) chunk. */
function chunkedComplete(body: Buffer): boolean {
  let at = 0
  for (;;) {
    const eol = body.indexOf('\r\n', at)
    if (eol < 0) return false
    const size = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16)
    if (size === 0) return body.indexOf('\r\n', eol + 2) >= 0
    at = eol + 2 + size + 2
    if (at > body.length) return false
  }
}
