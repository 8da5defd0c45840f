/**
 * Admitting a browser with an invite, in real Chromium: a `warren up` daemon behind a relay offers `web` to nobody;
 * the web app's page is refused, redeems a link of `warren invite`, and then reads the service (sha256 of the body).
 * A second origin (its own browser node id) gets the exact error of a reused, a forged, an expired and a malformed
 * invite in the page, and stays refused.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Page } from 'playwright-core'
import { startWebAppServer, type WebAppServer } from '../../src/browser/web/server.ts'
import { loadNodeKey } from '../../src/identity/keys.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from '../support/daemon.ts'
import { eventually } from '../support/eventually.ts'
import { startTestRelay, type TestRelay } from '../support/nodes.ts'
import { patternBytes, sha256, startWebApp } from '../support/web-app.ts'
import { buildOnce, launchChromium, SKIP } from './harness.ts'

const BODY_BYTES = 4 * 1024 * 1024

interface Invite {
  code: string
  link: string
  expiresAt: string
  ticket: string
  node: string
}

describe('admitting a browser with an invite (web app in Chromium)', { skip: SKIP, timeout: 240_000 }, () => {
  let relay: TestRelay
  let web: Awaited<ReturnType<typeof startWebApp>>
  let home: Awaited<ReturnType<typeof makeHome>>
  let daemon: TestDaemon
  let app: WebAppServer
  let chrome: Awaited<ReturnType<typeof launchChromium>>
  /** The same web app on a second origin: another IndexedDB, so another browser node id. */
  let otherOrigin: string

  before(async () => {
    web = await startWebApp()
    home = await makeHome()
    const owner = peerIdFromPrivateKey(await loadNodeKey(home.key)).toString()
    relay = await startTestRelay({ ws: { port: 0, host: '127.0.0.1' }, allow: [owner] })
    // the owner is on the relay's allow list: its circuits are not cut by the stranger limits
    await writeConfig(
      home,
      testConfig({
        relays: [relay.addrs.find((a) => !a.includes('/ws'))!],
        services: { web: { target: `/tcp/${web.port}`, allow: [] } },
      }),
    )
    daemon = await TestDaemon.start(home)
    await daemon.waitForLog(/ home relay \S+ .*chosen in/) // its ticket names the relay from then on
    app = await startWebAppServer({
      host: '127.0.0.1',
      port: 0,
      relay: relay.addrs.find((a) => a.includes('/ws/'))!,
      dir: await buildOnce(),
    })
    otherOrigin = app.url.replace('127.0.0.1', 'localhost')
    chrome = await launchChromium()
  })

  after(async () => {
    await chrome?.close()
    await app?.close()
    await daemon?.stop()
    await relay?.stop()
    await web?.close()
    if (home !== undefined) await removeHome(home)
  })

  const invite = async (...args: string[]): Promise<Invite> => {
    const res = await runCli(['invite', 'web', '--web', app.url, '--json', ...args], { home: home.dir })
    assert.equal(res.code, 0, res.stderr)
    return JSON.parse(res.stdout) as Invite
  }

  const open = async (url: string): Promise<Page> => {
    const page = await chrome.context.newPage()
    await page.goto(url)
    return page
  }

  /** The page's status once it shows an error code. */
  const statusError = async (page: Page): Promise<{ status: string; hint: string }> => {
    await page.waitForFunction("document.getElementById('status').textContent.startsWith('ERR_')", null, {
      timeout: 30_000,
    })
    return { status: (await page.textContent('#status')) ?? '', hint: (await page.textContent('#hint')) ?? '' }
  }

  /** The error page the Service Worker renders for a refused service. */
  const refusal = async (origin: string, ticket: string): Promise<string> => {
    const page = await open(`${origin}#${ticket}/web`)
    await page.waitForSelector('#code', { timeout: 30_000 })
    const code = (await page.textContent('#code')) ?? ''
    if (code === 'ERR_NOT_AUTHORIZED') {
      assert.equal(
        await page.textContent('#admit'),
        "Ask the owner of web for an invite link (warren invite web), or to admit this browser's node id (named above) with warren allow web <id>.",
      )
    }
    await page.close()
    return code
  }

  it('a valid invite: the page is refused, redeems the link, then reads the service', async () => {
    const inv = await invite()
    assert.equal(inv.link, `${app.url}#${inv.ticket}/web?invite=${inv.code}`)
    assert.equal(await refusal(app.url, inv.ticket), 'ERR_NOT_AUTHORIZED')

    const page = await open(inv.link)
    await page.waitForFunction("document.getElementById('status').textContent.startsWith('Invite accepted')", null, {
      timeout: 30_000,
    })
    assert.equal(await page.textContent('#status'), 'Invite accepted: this browser may now use web; opening it…')
    const browserId = (await page.textContent('#node')) ?? ''
    assert.match(browserId, /^12D3KooW/)
    await page.waitForURL(/\/s\/.+\/web\/$/, { timeout: 30_000 })
    const digest = await page.evaluate(
      `fetch(${JSON.stringify(`/s/${inv.ticket}/web/bytes?n=${BODY_BYTES}`)})
        .then((r) => r.ok ? r.arrayBuffer() : r.text().then((t) => { throw new Error(r.status + ' ' + t) }))
        .then((b) => crypto.subtle.digest('SHA-256', b))
        .then((d) => [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join(''))`,
    )
    assert.equal(digest, sha256(patternBytes(0, BODY_BYTES)))
    await page.close()

    const config = JSON.parse(await readFile(home.config, 'utf8')) as { services: { web: { allow: string[] } } }
    assert.deepEqual(config.services.web.allow, [browserId])
  })

  it("on a service's own origin: refused, then the link admits that origin's node, which reads the service", async () => {
    const res = await runCli(['invite', 'web', '--web', otherOrigin, '--service-origin', '--json'], { home: home.dir })
    assert.equal(res.code, 0, res.stderr)
    const inv = JSON.parse(res.stdout) as Invite
    const origin = `http://web.${(await daemon.identity()).idBase36}.localhost:${new URL(app.url).port}`
    assert.equal(inv.link, `${origin}/.warren/invite#invite=${inv.code}`)

    const before = await open(`${origin}/`)
    await before.waitForSelector('#code', { timeout: 30_000 })
    assert.equal(await before.textContent('#code'), 'ERR_NOT_AUTHORIZED')
    await before.close()

    const page = await open(inv.link)
    await page.waitForFunction("document.getElementById('status')?.textContent.startsWith('Invite accepted')", null, {
      timeout: 30_000,
    })
    await page.waitForURL(`${origin}/`, { timeout: 30_000 })
    const digest = await page.evaluate(
      `fetch('/bytes?n=${BODY_BYTES}')
        .then((r) => r.arrayBuffer())
        .then((b) => crypto.subtle.digest('SHA-256', b))
        .then((d) => [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join(''))`,
    )
    assert.equal(digest, sha256(patternBytes(0, BODY_BYTES)))
    await page.close()
  })

  it('a reused invite is refused in the page with ERR_INVITE_USED', async () => {
    const inv = await invite()
    const first = await open(inv.link)
    await first.waitForURL(/\/s\/.+\/web\/$/, { timeout: 30_000 })
    await first.close()
    // the 127.0.0.1 origin redeemed it (again: it was admitted by the first test); another origin may not
    const page = await open(`${otherOrigin}#${inv.ticket}/web?invite=${inv.code}`)
    const { status, hint } = await statusError(page)
    assert.equal(status, `ERR_INVITE_USED: node ${inv.node}: this invite to "web" was already redeemed by another node`)
    assert.equal(hint, 'Each invite admits one node once: ask the owner for an invite of your own.')
    await page.close()
  })

  it('a forged invite is refused in the page with ERR_INVITE_INVALID', async () => {
    const inv = await invite()
    const forged = `${inv.code.slice(0, -1)}${inv.code.endsWith('A') ? 'B' : 'A'}`
    const page = await open(`${otherOrigin}#${inv.ticket}/web?invite=${forged}`)
    const { status } = await statusError(page)
    assert.equal(status, `ERR_INVITE_INVALID: node ${inv.node}: this invite code is not valid for service "web"`)
    await page.close()
  })

  it('an expired invite is refused in the page with ERR_INVITE_EXPIRED', async () => {
    const inv = await invite('--ttl', '1s')
    await eventually(() => Date.now() > Date.parse(inv.expiresAt) + 50, { timeoutMs: 5_000 })
    const page = await open(`${otherOrigin}#${inv.ticket}/web?invite=${inv.code}`)
    const { status } = await statusError(page)
    assert.equal(status, `ERR_INVITE_EXPIRED: node ${inv.node}: this invite to "web" expired ${inv.expiresAt}`)
    await page.close()
  })

  it('a malformed code in the link is refused by the page itself; no failed invite admitted the other origin', async () => {
    const inv = await invite()
    const page = await open(`${otherOrigin}#${inv.ticket}/web?invite=not%20a%20code`)
    const { status, hint } = await statusError(page)
    assert.equal(status, 'ERR_INVITE_INVALID: the invite code in the link is malformed')
    assert.match(hint, /^Copy the whole link again/)
    await page.close()
    assert.equal(await refusal(otherOrigin, inv.ticket), 'ERR_NOT_AUTHORIZED')
  })
})
