/**
 * Slow and bursty readers through every access path, with real curl and real daemons: SOCKS5, the HTTP proxy's
 * absolute form and CONNECT, the gateway's path and Kubo forms (fast path), the gateway with the fast path off
 * (full path), and a `"type": "http"` service through the gateway. Downloads are read at 1, 10 and 40 MiB/s by
 * `curl --limit-rate` and in bursts by a Node client that pauses; uploads are read at those paces by the target
 * (blobHttpServer's `x-pace`). Every transfer must arrive whole (SHA-256 of the whole body) and curl exit 0.
 * (Memory under a slow reader: test/gateway/slow-memory.test.ts.)
 */
import assert from 'node:assert/strict'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { type AccessPath, curlRun, curlTarget, nodeRequest } from '../support/access-clients.ts'
import { type DaemonPair as AccessLab, startDaemonPair as startAccessLab } from '../support/daemon-pair.ts'
import { ByteSource, blobHttpServer, MiB, pace, pump, readPaced } from '../support/transfer.ts'

/** One row of the matrix: how the client reaches the service, which access port, which service. */
interface Row {
  name: string
  how: AccessPath
  port: 'fast' | 'full'
  service: 'blob' | 'hblob'
  /** Drop curl's `Expect: 100-continue` on uploads, so the fast path carries them too. */
  noExpect?: boolean
}

const ROWS: Row[] = [
  { name: 'SOCKS5', how: 'socks', port: 'fast', service: 'blob' },
  { name: 'HTTP proxy, absolute form', how: 'proxy', port: 'fast', service: 'blob', noExpect: true },
  { name: 'HTTP proxy, CONNECT', how: 'connect', port: 'fast', service: 'blob' },
  { name: 'gateway /http/ (fast path)', how: 'gateway', port: 'fast', service: 'blob', noExpect: true },
  { name: 'gateway /p2p/…/x/ (Kubo form)', how: 'kubo', port: 'fast', service: 'blob' },
  { name: 'gateway /http/ (full path)', how: 'gateway', port: 'full', service: 'blob' },
  { name: 'gateway to a "type": "http" service', how: 'gateway', port: 'fast', service: 'hblob', noExpect: true },
]

/**
 * Paces and sizes (download, upload): each well over the 2 MiB stream window, small enough for the whole file to
 * stay short. curl's `--limit-rate` lets about the first 6 MiB through at full speed before it holds the rate, so
 * its 1 MiB/s download is 12 MiB (the uploads' paced reader holds its rate from the first byte).
 */
const PACES = [
  { name: '40 MiB/s', rate: '40M', x: '40mibps', down: 64 * MiB, up: 64 * MiB },
  { name: '10 MiB/s', rate: '10M', x: '10mibps', down: 24 * MiB, up: 24 * MiB },
  { name: '1 MiB/s', rate: '1M', x: '1mibps', down: 12 * MiB, up: 6 * MiB },
  { name: 'bursts', rate: '', x: 'bursts', down: 16 * MiB, up: 16 * MiB },
]

const digests = new Map<number, string>()
const digest = (size: number): string => {
  let d = digests.get(size)
  if (d === undefined) {
    d = ByteSource.digest(size)
    digests.set(size, d)
  }
  return d
}

describe('slow and bursty readers through the access port', () => {
  let lab: AccessLab
  let blob: Awaited<ReturnType<typeof blobHttpServer>>
  let dir: string
  const files = new Map<number, string>()

  before(async () => {
    blob = await blobHttpServer()
    dir = await mkdtemp(join(tmpdir(), 'warren-slow-'))
    for (const p of PACES) {
      const file = join(dir, `${p.up}.bin`)
      await pump(new ByteSource(p.up), createWriteStream(file))
      files.set(p.up, file)
      digest(p.up)
      digest(p.down)
    }
    lab = await startAccessLab(
      // fresh: used by one test only, so that its first request opens a new stream
      { blob: `/tcp/${blob.port}`, hblob: { target: `/tcp/${blob.port}`, type: 'http' }, fresh: `/tcp/${blob.port}` },
      true,
    )
  })
  after(async () => {
    await lab?.close()
    await blob?.close()
    await rm(dir, { recursive: true, force: true })
  })

  const accessFor = (row: Row): string => (row.port === 'fast' ? lab.fast : lab.full)
  /** The daemons' warnings, for a failure's message. */
  const logs = (): string => {
    const warn = (d: { stderr: string } | undefined): string[] =>
      (d?.stderr ?? '').split('\n').filter((l) => / (warn|error) {1,2}/.test(l))
    return `\nwarnings of a, b, c:\n${[...warn(lab.a), ...warn(lab.b), ...warn(lab.c)].slice(-40).join('\n')}`
  }

  async function download(row: Row, p: (typeof PACES)[number]): Promise<void> {
    const path = `/blob/${p.down}`
    if (p.rate === '') {
      // bursts: a Node reader that reads as fast as it can for 150 ms, then stops for 350 ms
      const req = nodeRequest(row.how, accessFor(row), row.service, path)
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        req.once('response', resolve).once('error', reject)
        req.end()
      })
      assert.equal(res.statusCode, 200)
      const r = await readPaced(res, pace.bursts())
      assert.equal(r.ending, 'end', `${row.name}, bursts: ended with ${r.ending} after ${r.bytes} bytes${logs()}`)
      assert.equal(r.bytes, p.down)
      assert.equal(r.sha256, digest(p.down))
      assert.equal(res.complete, true)
      return
    }
    const r = await curlRun(['--limit-rate', p.rate, ...curlTarget(row.how, accessFor(row), row.service, path)])
    assert.equal(r.code, 0, `${row.name}, download at ${p.name}: curl ${r.code}: ${r.stderr}${logs()}`)
    assert.equal(r.bytes, p.down)
    assert.equal(r.sha256, digest(p.down))
  }

  async function upload(row: Row, p: (typeof PACES)[number]): Promise<void> {
    const args = ['-T', files.get(p.up)!, '-X', 'POST', '-H', `x-pace: ${p.x}`]
    if (row.noExpect === true) args.push('-H', 'Expect:')
    const r = await curlRun([...args, ...curlTarget(row.how, accessFor(row), row.service, '/upload')])
    assert.equal(r.code, 0, `${row.name}, upload read at ${p.name}: curl ${r.code}: ${r.stderr}${logs()}`)
    assert.equal(r.text, `${p.up} ${digest(p.up)}`, `${row.name}, upload read at ${p.name}${logs()}`)
  }

  // The rows run side by side, each through its paces in its own order, so that the 40 MiB/s transfers of
  // different rows rarely overlap
  describe('every path, every pace, both directions', { concurrency: true }, () => {
    for (const [i, row] of ROWS.entries()) {
      const order = PACES.map((_, k) => PACES[(k + i) % PACES.length]!)
      it(`${row.name}: downloads and uploads at ${order.map((p) => p.name).join(', ')}`, async () => {
        for (const p of order) {
          await download(row, p)
          await upload(row, p)
        }
      })
    }
  })

  it('an upload whose body arrives while its stream is still opening is carried whole (fast path)', async () => {
    // more than the fast path keeps for a stream being opened (64 KiB), less than a stream window, in one write
    const size = 4 * MiB
    const src = new ByteSource(size)
    const first = src.next(100 * 1024)!
    const [host, port] = lab.fast.split(':') as [string, string]
    const socket = connect({ host, port: Number(port) })
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
    socket.write(
      `POST /http/a/fresh/upload HTTP/1.1\r\nHost: ${lab.fast}\r\nContent-Length: ${size}\r\nx-pace: fast\r\n\r\n`,
    )
    socket.write(first)
    await sleep(300)
    const rest = pump(src, socket, false)
    let answer = ''
    socket.on('data', (d: Buffer) => {
      answer += d.toString('latin1')
    })
    const ended = new Promise<string>((resolve) => socket.once('close', () => resolve('closed')))
    const whole = new Promise<string>((resolve) => {
      const check = setInterval(() => {
        // the answer comes chunked: `48\r\n<bytes> <sha256>\r\n0\r\n\r\n`
        if (answer.includes(`\r\n${size} ${digest(size)}\r\n0\r\n\r\n`)) {
          clearInterval(check)
          resolve('answered')
        }
      }, 50)
      void ended.then(() => clearInterval(check))
    })
    // a request body stuck in a paused socket would never be answered: give up after 30 s
    const stuck = sleep(30_000).then(() => `no answer after 30 s (${answer.length} bytes of answer)`)
    const outcome = await Promise.race([whole, ended, stuck])
    await rest
    socket.destroy()
    assert.equal(outcome, 'answered', JSON.stringify(answer.slice(0, 400)))
    assert.match(answer, /^HTTP\/1\.1 200 /)
  })
})
