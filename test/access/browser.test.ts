/**
 * A real browser: Debian's Chromium driven by playwright-core, configured with nothing but the PAC file of the
 * access port. It loads `http://web.n1.warren/page`, whose script opens a WebSocket to another service
 * (`hweb`, a `"type": "http"` service that learns the caller's node id), and we read the rendered page.
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
]

describe('a browser with the PAC file', {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`,
}, () => {
  let p: Pair
  let profile: string
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>>

  before(async () => {
    p = await startPair()
    profile = await mkdtemp(join(tmpdir(), 'warren-chromium-'))
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...FLAGS, `--proxy-pac-url=http://${p.access}/proxy.pac`],
      timeout: 60_000,
    })
  })

  after(async () => {
    await context?.close()
    await p?.stop()
    if (profile !== undefined) await rm(profile, { recursive: true, force: true })
  })

  it('renders http://web.n1.warren/ and a WebSocket to another service works from the page', async () => {
    const page = await context.newPage()
    const res = await page.goto('http://web.n1.warren/page?ws=ws://hweb.n1.warren/live', { timeout: 30_000 })
    assert.equal(res?.status(), 200)
    assert.equal(await page.title(), 'warren page')
    assert.equal(await page.textContent('#title'), 'Hello through Warren')
    // a string, so this Node-side file needs no DOM types
    await page.waitForFunction("document.getElementById('ws').textContent !== 'connecting'", null, { timeout: 15_000 })
    assert.equal(
      await page.textContent('#ws'),
      `welcome /live peer=${p.client.peerId.toString()} | ping from the browser`,
    )
    if (process.env.WARREN_SCREENSHOT !== undefined) await page.screenshot({ path: process.env.WARREN_SCREENSHOT })
    await page.close()
  })

  it('shows the Warren error page for a service that does not exist', async () => {
    const page = await context.newPage()
    const res = await page.goto('http://nope.n1.warren/', { timeout: 30_000 })
    assert.equal(res?.status(), 404)
    assert.match((await page.textContent('body')) ?? '', /ERR_UNKNOWN_SERVICE: node 12D3KooW\w+ has no service "nope"/)
    await page.close()
  })

  it('other names go DIRECT, not through Warren', async () => {
    const page = await context.newPage()
    const res = await page.goto(`http://127.0.0.1:${p.web.port}/info`, { timeout: 30_000 })
    assert.equal(res?.status(), 200)
    const body = JSON.parse((await page.textContent('body')) ?? '{}') as { headers: Record<string, string> }
    assert.equal(body.headers.host, `127.0.0.1:${p.web.port}`)
    assert.equal(body.headers['x-forwarded-for'], undefined, 'not proxied')
    await page.close()
  })
})
