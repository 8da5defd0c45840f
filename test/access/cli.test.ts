/**
 * The access port of a real daemon (`warren up` as a child process): `warren status --json` names the bound
 * address, and curl reaches a service of the other daemon through SOCKS5, the HTTP proxy and the gateway.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { curl, hashedGet } from '../support/access-clients.ts'
import { runCli } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair as startDaemons } from '../support/daemon-pair.ts'
import { patternBytes, startWebApp } from '../support/web-app.ts'

describe('access port of a real daemon', () => {
  let web: Awaited<ReturnType<typeof startWebApp>>
  let pair: DaemonPair
  let access: string

  before(async () => {
    web = await startWebApp()
    pair = await startDaemons({ web: `/tcp/${web.port}` })
    const status = await runCli(['status', '--json'], { home: pair.bHome.dir })
    assert.equal(status.code, 0, status.stderr)
    access = (JSON.parse(status.stdout) as { access: { listen: string } }).access.listen
  })

  after(async () => {
    await pair?.close()
    await web?.close()
  })

  it('warren status --json gives the bound loopback address', () => {
    assert.match(access, /^127\.0\.0\.1:\d+$/)
    assert.notEqual(access, '127.0.0.1:0')
  })

  it('curl through SOCKS5, the HTTP proxy and the gateway', async () => {
    for (const args of [
      ['--socks5-hostname', access, 'http://web.a.warren/info'],
      ['-x', `http://${access}`, 'http://web.a.warren/info'],
      [`http://${access}/http/a/web/info`],
    ]) {
      const r = await curl(args)
      assert.equal(r.code, 0, r.stderr)
      assert.equal((JSON.parse(r.stdout) as { url: string }).url, '/info')
    }
  })

  let grewMiB = Number.NaN

  it('streams 256 MiB each way through the gateway of a real daemon, checksums equal', async () => {
    const MIB = 1024 * 1024
    const total = (process.env.WARREN_TEST_GIB === '1' ? 1024 : 256) * MIB
    const pid = pair.b.child.pid!
    const rss = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024
    const base = rss()
    let peak = base
    const sampler = setInterval(() => {
      peak = Math.max(peak, rss())
    }, 100)
    const port = Number(access.slice(access.lastIndexOf(':') + 1))
    try {
      const down = await hashedGet(access, `/http/a/web/bytes?n=${total}`)
      const want = createHash('sha256')
      for (let off = 0; off < total; off += 4 * MIB) want.update(patternBytes(off, 4 * MIB))
      const wantSha = want.digest('hex')
      assert.deepEqual(down, { bytes: total, sha: wantSha })
      const up = await new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/http/a/web/hash', method: 'POST' }, (res) => {
          let body = ''
          res.on('data', (c: Buffer) => {
            body += c
          })
          res.on('end', () => resolve(body))
        })
        req.on('error', reject)
        void (async () => {
          for (let off = 0; off < total; off += 4 * MIB) {
            if (!req.write(patternBytes(off, 4 * MIB))) await new Promise((r) => req.once('drain', r))
          }
          req.end()
        })()
      })
      assert.ok(up.startsWith('{'), up)
      assert.deepEqual(JSON.parse(up), { bytes: total, sha256: wantSha })
    } finally {
      clearInterval(sampler)
    }
    grewMiB = Math.round((peak - base) / MIB)
  })

  // Regression: Yamux emits 'drain' on every window update, and writers that resumed on it let a stream's write
  // queue grow with the body; src/p2p/stream-room.ts waits for the queue to be short instead.
  it("the gateway daemon's memory stays bounded while bodies stream (< 128 MiB growth)", () => {
    assert.ok(grewMiB < 128, `the gateway daemon's RSS grew by ${grewMiB} MiB while the bodies streamed`)
  })
})
