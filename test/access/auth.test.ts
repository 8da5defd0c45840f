/**
 * proxy.auth (required when the access port listens off loopback; honoured on loopback too, which is how it is
 * tested here): SOCKS5 username/password, HTTP Proxy-Authorization, and Basic auth on the gateway.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { curl, parseCurlResponse, socks5Connect } from '../support/access-clients.ts'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'

const auth = { username: 'alice', password: 's3cret:with colon' }

describe('access port with proxy.auth', () => {
  let p: Pair
  before(async () => {
    p = await startPair({ client: { proxy: { auth } } })
  })
  after(() => p.stop())

  it('a foreign Host on the gateway gets 421, not a login prompt (401) under that name', async () => {
    const c = await curl(['-i', '-H', 'Host: rebind.example', `http://${p.access}/http/n1/web/info`])
    assert.equal(c.code, 0, c.stderr)
    const r = parseCurlResponse(c.stdout)
    assert.equal(r.status, 421)
    assert.equal(r.headers['www-authenticate'], undefined)
    assert.equal(r.headers['x-warren-error'], 'ERR_HOST_NOT_SERVED')
    const ws = await curl([
      '-i',
      '-H',
      'Host: rebind.example',
      '-H',
      'Upgrade: websocket',
      '-H',
      'Connection: Upgrade',
      `http://${p.access}/http/n1/web/`,
    ])
    assert.equal(parseCurlResponse(ws.stdout).status, 421, 'Upgrade requests too')
    const own = await curl(['-i', `http://${p.access}/http/n1/web/info`])
    assert.equal(parseCurlResponse(own.stdout).status, 401, "the access port's own name still asks for credentials")
  })

  it('SOCKS5 without username/password: no acceptable method (0xff)', async () => {
    const r = await socks5Connect(p.access, { host: 'web.n1.warren', port: 80 })
    r.socket.destroy()
    assert.equal(r.reply, 0xff)
    const c = await curl(['--socks5-hostname', p.access, 'http://web.n1.warren/info'])
    assert.equal(c.code, 97)
    assert.match(c.stderr, /No authentication method was acceptable/)
  })

  it('SOCKS5 with a wrong password: authentication status 1', async () => {
    const r = await socks5Connect(p.access, { host: 'web.n1.warren', port: 80 }, { ...auth, password: 'nope' })
    r.socket.destroy()
    assert.equal(r.authStatus, 1)
    const c = await curl(['-x', `socks5h://alice:nope@${p.access}`, 'http://web.n1.warren/info'])
    assert.equal(c.code, 97)
    assert.match(c.stderr, /User was rejected by the SOCKS5 server/)
  })

  it('SOCKS5 with the right credentials works', async () => {
    const c = await curl([
      '-x',
      `socks5h://${p.access}`,
      '--proxy-user',
      `alice:${auth.password}`,
      'http://web.n1.warren/info',
    ])
    assert.equal(c.code, 0, c.stderr)
    assert.equal(JSON.parse(c.stdout).url, '/info')
  })

  it('HTTP proxy without credentials: 407 with Proxy-Authenticate; with them: 200 and nothing leaks upstream', async () => {
    const no = await curl(['-i', '-x', `http://${p.access}`, 'http://web.n1.warren/info'])
    const res = parseCurlResponse(no.stdout)
    assert.equal(res.status, 407)
    assert.equal(res.headers['proxy-authenticate'], 'Basic realm="warren"')
    assert.equal(res.headers['x-warren-error'], 'ERR_PROXY_AUTH')
    assert.match(res.body, /ERR_PROXY_AUTH: this Warren access port listens off loopback and needs the credentials/)
    const wrong = parseCurlResponse(
      (await curl(['-i', '-x', `http://${p.access}`, '--proxy-user', 'alice:bad', 'http://web.n1.warren/info'])).stdout,
    )
    assert.equal(wrong.status, 407)
    assert.match(wrong.body, /ERR_PROXY_AUTH: the proxy credentials are wrong/)
    const ok = await curl([
      '-x',
      `http://${p.access}`,
      '--proxy-user',
      `alice:${auth.password}`,
      'http://web.n1.warren/info',
    ])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(JSON.parse(ok.stdout).headers['proxy-authorization'], undefined)
  })

  it('CONNECT without credentials: 407', async () => {
    const c = await curl(['-p', '-x', `http://${p.access}`, 'http://web.n1.warren/info'])
    assert.equal(c.code, 56)
    assert.match(c.stderr, /CONNECT tunnel failed, response 407/)
    const ok = await curl([
      '-p',
      '-x',
      `http://${p.access}`,
      '--proxy-user',
      `alice:${auth.password}`,
      'http://web.n1.warren/info',
    ])
    assert.equal(ok.code, 0, ok.stderr)
  })

  it('gateway: 401 with WWW-Authenticate; Basic credentials let it through and are not forwarded', async () => {
    const no = parseCurlResponse((await curl(['-i', `http://${p.access}/http/n1/web/info`])).stdout)
    assert.equal(no.status, 401)
    assert.equal(no.headers['www-authenticate'], 'Basic realm="warren"')
    const ok = await curl(['-u', `alice:${auth.password}`, `http://${p.access}/http/n1/web/info`])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(JSON.parse(ok.stdout).headers.authorization, undefined)
  })
})
