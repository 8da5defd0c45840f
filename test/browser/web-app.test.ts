/**
 * The Warren web app in real Chromium: a page plus a Service Worker (served by startWebAppServer on loopback)
 * renders a multi-file site (HTML, CSS, an image, a `fetch` to an API route) from an HTTP service behind a node that
 * listens nowhere, and shows clear messages for bad links.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import { startWebAppServer, type WebAppServer } from '../../src/browser/web/server.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import { nodeKey, startNode, startTestRelay, type TestRelay } from '../support/nodes.ts'
import { buildOnce, launchChromium, SKIP } from './harness.ts'

/** A 1×1 red PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
  'base64',
)

/** A small site: a page with a stylesheet, an image and a script that fetches an API route. */
async function startSite(): Promise<{ port: number; close(): Promise<void> }> {
  const files: Record<string, [string, string | Buffer]> = {
    '/': [
      'text/html',
      '<!doctype html><title>site</title><link rel="stylesheet" href="/style.css"><h1 id="title">Served through Warren</h1><img id="logo" src="/logo.png"><p id="api">loading</p><script src="/app.js"></script>',
    ],
    '/style.css': ['text/css', 'h1 { color: rgb(12, 34, 56); }'],
    '/logo.png': ['image/png', PNG],
    '/app.js': [
      'text/javascript',
      "fetch('/api/items?n=3').then(r => r.json()).then(j => { document.getElementById('api').textContent = j.items.join(',') })",
    ],
  }
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/api/items') {
      const n = Number(url.searchParams.get('n'))
      return void res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ items: Array.from({ length: n }, (_, i) => `item${i}`) }))
    }
    const f = files[url.pathname]
    if (f === undefined) return void res.writeHead(404).end('not found')
    res.writeHead(200, { 'content-type': f[0] }).end(f[1])
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

describe('the Warren web app (page + Service Worker)', { skip: SKIP, timeout: 180_000 }, () => {
  let relay: TestRelay
  let host: WarrenNode
  let site: Awaited<ReturnType<typeof startSite>>
  let app: WebAppServer
  let chrome: Awaited<ReturnType<typeof launchChromium>>
  let ticket: string

  before(async () => {
    const hostKey = await nodeKey()
    relay = await startTestRelay({ ws: { port: 0, host: '127.0.0.1' }, allow: [hostKey.id] })
    site = await startSite()
    host = await startNode({
      key: hostKey,
      config: {
        relays: [relay.addrs.find((a) => !a.includes('/ws'))!],
        services: {
          site: { target: `/tcp/${site.port}`, allow: ['*'] },
          other: { target: `/tcp/${site.port}`, allow: ['*'] },
        },
      },
    })
    ticket = host.identity().ticket
    app = await startWebAppServer({
      host: '127.0.0.1',
      port: 0,
      relay: relay.addrs.find((a) => a.includes('/ws/'))!,
      dir: await buildOnce(),
    })
    chrome = await launchChromium()
  })

  after(async () => {
    await chrome?.close()
    await app?.close()
    await host?.stop()
    await relay?.stop()
    await site?.close()
  })

  /** The URL of `service` on an origin of its own. */
  const serviceUrl = (service: string): string =>
    `http://${service}.${formatNodeIdBase36(host.peerId)}.localhost:${new URL(app.url).port}/`

  const open = async (hash: string): Promise<Page> => {
    const page = await chrome.context.newPage()
    await page.goto(`${app.url}#${hash}`)
    return page
  }

  it('renders a multi-file site from a service: HTML, CSS, an image and a fetch to an API route', async () => {
    const page = await open(`${ticket}/site`)
    await page.waitForURL(/\/s\/.+\/site\//, { timeout: 30_000 })
    await page.waitForFunction("document.getElementById('api')?.textContent === 'item0,item1,item2'", null, {
      timeout: 30_000,
    })
    assert.equal(await page.textContent('#title'), 'Served through Warren')
    assert.equal(await page.evaluate("getComputedStyle(document.getElementById('title')).color"), 'rgb(12, 34, 56)')
    assert.equal(await page.evaluate("document.getElementById('logo').naturalWidth"), 1)
    if (process.env.WARREN_SCREENSHOT !== undefined) await page.screenshot({ path: process.env.WARREN_SCREENSHOT })
    await page.close()
  })

  it('on an origin of its own (<service>.<node id>.localhost) the service renders at /', async () => {
    const page = await chrome.context.newPage()
    await page.goto(serviceUrl('site'))
    await page.waitForFunction("document.getElementById('api')?.textContent === 'item0,item1,item2'", null, {
      timeout: 30_000,
    })
    assert.equal(new URL(page.url()).pathname, '/')
    assert.equal(await page.evaluate("getComputedStyle(document.getElementById('title')).color"), 'rgb(12, 34, 56)')
    assert.equal(await page.evaluate("document.getElementById('logo').naturalWidth"), 1)
    await page.close()
  })

  it("a second service's page cannot read the first service's responses (origin isolation)", async () => {
    const first = await chrome.context.newPage()
    await first.goto(serviceUrl('site'))
    await first.waitForSelector('#title', { timeout: 30_000 })
    const second = await chrome.context.newPage()
    await second.goto(serviceUrl('other'))
    await second.waitForSelector('#title', { timeout: 30_000 })
    const own = await second.evaluate("fetch('/api/items?n=1').then((r) => r.text())")
    assert.equal(own, '{"items":["item0"]}', "the second service's page reads its own service")
    const stolen = await second.evaluate(
      `fetch(${JSON.stringify(`${serviceUrl('site')}api/items?n=1`)}).then((r) => r.text(), (e) => 'refused: ' + e.name)`,
    )
    assert.equal(stolen, 'refused: TypeError')
    await first.close()
    await second.close()
  })

  it('a malformed ticket in the link is a clear message in the page', async () => {
    const page = await open(`${ticket.slice(0, -6)}1/site`)
    await page.waitForFunction("document.getElementById('status').textContent.startsWith('ERR_')", null, {
      timeout: 30_000,
    })
    assert.match((await page.textContent('#status')) ?? '', /^ERR_BAD_TICKET: ticket contains "1" at position \d+/)
    assert.match((await page.textContent('#hint')) ?? '', /Copy the whole ticket again/)
    await page.close()
  })

  it('an offline node is a clear error page', async () => {
    const offline = await nodeKey()
    const page = await open(`${offline.id}/site`)
    await page.waitForSelector('#code', { timeout: 30_000 })
    assert.equal(await page.textContent('#code'), 'ERR_DIAL_FAILED')
    assert.equal(
      await page.textContent('#message'),
      `node ${offline.id} is not reachable through the relay: it is offline or not reserved there`,
    )
    await page.close()
  })

  it('without a link the page shows the browser node id to admit', async () => {
    const page = await open('')
    await page.waitForFunction("document.getElementById('node').textContent.startsWith('12D3KooW')", null, {
      timeout: 30_000,
    })
    await page.close()
  })
})
