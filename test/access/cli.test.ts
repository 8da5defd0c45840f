/**
 * The access port of a real daemon (`warren up` as a child process): `warren status --json` names the bound
 * address, and curl reaches a service of the other daemon through SOCKS5, the HTTP proxy and the gateway.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { runCli } from '../helpers/cli.ts'
import { type Pair as DaemonPair, startPair as startDaemons } from '../helpers/two-daemons.ts'
import { curl, startWebApp } from './support.ts'

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
})
