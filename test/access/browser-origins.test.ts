/**
 * The gateway's origin rules in a real browser (Debian's Chromium via playwright-core): a navigation to the path
 * gateway lands on the service's own origin `http://<service>.<node>.localhost:<port>/`; a page there cannot read
 * another service (its fetch fails) nor reach one with a no-cors POST or a form; and a page whose name was rebound
 * to 127.0.0.1 (DNS rebinding, played by Chromium's --host-resolver-rules) gets 421.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { chromium } from 'playwright-core'
import { type NodePair as Pair, startNodePair as startPair } from '../support/node-pair.ts'

const CHROMIUM = '/usr/bin/chromium'
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--host-resolver-rules=MAP rebind.example 127.0.0.1',
]

describe('gateway origins in a browser', {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`,
}, () => {
  let p: Pair
  let port: number
  let profile: string
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>>
  /** Requests the web app got for service hweb (the one pages of service web must not reach). */
  let hwebRequests = 0

  before(async () => {
    p = await startPair()
    port = Number(p.access.slice(p.access.lastIndexOf(':') + 1))
    p.web.server.on('request', (req) => {
      if (String(req.headers.host).startsWith('hweb.')) hwebRequests++
    })
    profile = await mkdtemp(join(tmpdir(), 'warren-chromium-'))
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      timeout: 60_000,
    })
  })

  after(async () => {
    await context?.close()
    await p?.stop()
    if (profile !== undefined) await rm(profile, { recursive: true, force: true })
  })

  // the first request of this fresh pair is a browser's: the alias n1 (a ticket in peers) must still be usable
  it('a navigation to the path gateway lands on the service origin; that page cannot use another service', async () => {
    const page = await context.newPage()
    const statuses: [string, number][] = []
    page.on('response', (r) => statuses.push([r.url(), r.status()]))
    const res = await page.goto(`http://127.0.0.1:${port}/http/n1/web/a/../page`, { timeout: 30_000 })
    assert.equal(res?.status(), 200, String(await res?.text()))
    assert.equal(page.url(), `http://web.n1.localhost:${port}/page`)
    assert.equal(await page.title(), 'warren page')
    assert.deepEqual(statuses.slice(0, 2), [
      [`http://127.0.0.1:${port}/http/n1/web/page`, 302],
      [`http://web.n1.localhost:${port}/page`, 200],
    ])

    // its own origin works
    assert.equal(await page.evaluate("fetch('/info').then((r) => r.json()).then((j) => j.url)"), '/info')
    const hwebBefore = hwebRequests
    // reading another service, on its own origin or through the path gateway: refused, and unreadable anyway
    for (const url of [`http://hweb.n1.localhost:${port}/info`, `http://127.0.0.1:${port}/http/n1/hweb/info`]) {
      const got = await page.evaluate(
        `fetch(${JSON.stringify(url)}).then((r) => r.text(), (e) => 'failed: ' + e.message)`,
      )
      assert.equal(got, 'failed: Failed to fetch', url)
    }
    // a blind POST (no-cors: the page cannot read the answer, but the request would go out)
    const blind = await page.evaluate(
      `fetch('http://127.0.0.1:${port}/http/n1/hweb/info', { method: 'POST', mode: 'no-cors', body: 'x' }).then((r) => r.type)`,
    )
    assert.equal(blind, 'opaque')
    // Chromium reports no response for a failed CORS fetch; the blind POST's answer it does report
    assert.deepEqual(
      statuses.filter(([u]) => u.includes('hweb')),
      [[`http://127.0.0.1:${port}/http/n1/hweb/info`, 403]],
    )
    assert.equal(hwebRequests, hwebBefore, 'service hweb saw none of them')
    await page.close()
  })

  it('a form on one service posting to another through the path gateway gets 403 ERR_CROSS_ORIGIN', async () => {
    const page = await context.newPage()
    await page.goto(`http://web.n1.localhost:${port}/page`, { timeout: 30_000 })
    const hwebBefore = hwebRequests
    const submit = `(() => { const f = document.createElement('form'); f.method = 'POST';
      f.action = 'http://127.0.0.1:${port}/http/n1/hweb/info'; document.body.appendChild(f); f.submit() })()`
    const [nav] = await Promise.all([page.waitForNavigation({ timeout: 30_000 }), page.evaluate(submit)])
    assert.equal(nav?.status(), 403)
    assert.equal(
      (await page.textContent('body'))?.split('\n')[2],
      `ERR_CROSS_ORIGIN: a browser request to the path gateway was refused: the request comes from http://web.n1.localhost:${port}`,
    )
    assert.equal(hwebRequests, hwebBefore)
    await page.close()
  })

  it('DNS rebinding: a page at rebind.example (resolving to 127.0.0.1) gets 421 ERR_HOST_NOT_SERVED', async () => {
    const page = await context.newPage()
    const res = await page.goto(`http://rebind.example:${port}/http/n1/web/info`, { timeout: 30_000 })
    assert.equal(res?.status(), 421)
    assert.equal(
      (await page.textContent('body'))?.split('\n')[2],
      `ERR_HOST_NOT_SERVED: the access port does not serve the host name "rebind.example:${port}": it is not an address, localhost, *.localhost or a name in proxy.hosts`,
    )
    await page.close()
  })
})
