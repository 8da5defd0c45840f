/**
 * `warren relay --web`: a real relay process serves the web app beside its WebSocket listener; Chromium opens
 * `<relay>/#<ticket>/<service>` of a node behind the relay, which admits the browser, and fetches more than the
 * relay's data limit for strangers (sha256 equal) over one circuit. The page's relay address: at the name it was
 * opened by, at --web-domain over WSS with a certificate (HTTPS), and at the proxy's wss port behind a TLS proxy.
 * Bad input: the web port in use, a bad --web-domain, --web-listen or --web without --ws, each with its exact error.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, request, type Server } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import type { WarrenNode } from '../../src/node/warren-node.ts'
import type { RelayStatus } from '../../src/relay/server/relay-node.ts'
import { lineChannel } from '../../src/testing/natlab/lines.ts'
import { runCli, spawnCli } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'
import { nodeKey, startNode } from '../support/nodes.ts'
import { buildOnce, launchChromium, SKIP } from './harness.ts'

const MiB = 1024 * 1024
/** The relay's data limit for strangers (its default), and what the browser fetches: three times as much. */
const LIMIT = MiB
const BIG = randomBytes(3 * MiB)
const BIG_SHA = createHash('sha256').update(BIG).digest('hex')

async function relayHome(extra: Record<string, unknown> = {}): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'warren-relay-web-'))
  const web = { dir: await buildOnce() }
  await writeFile(
    join(home, 'relay.json'),
    JSON.stringify({ stun: false, ws: { port: 0, host: '127.0.0.1' }, web, limits: { dataBytes: LIMIT }, ...extra }),
  )
  return home
}

interface RelayProcess {
  home: string
  child: ChildProcess
  id: string
  tcp: string
  web: string
  /** Where the web server listens. */
  local: string
  exited: Promise<number | null>
}

async function spawnRelay(home: string, extra: string[] = []): Promise<RelayProcess> {
  const child = spawnCli(['--home', home, 'relay', '--json', '--listen', '/ip4/127.0.0.1/tcp/0', ...extra])
  const stderr: string[] = []
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const ready = await lineChannel(child.stdout!, child.stdin!, 'warren relay')
    .next('text', 45_000)
    .catch((err: Error) => {
      throw new Error(`${err.message}\n${stderr.join('')}`)
    })
  const info = JSON.parse(String(ready.text)) as {
    id: string
    addrs: string[]
    web: { url: string; local: string } | null
  }
  assert.ok(info.web !== null, 'the relay serves the web app')
  return {
    home,
    child,
    id: info.id,
    tcp: info.addrs.find((a) => !a.includes('/ws/'))!,
    web: info.web.url,
    local: info.web.local,
    exited,
  }
}

async function stopRelay(r: RelayProcess | undefined): Promise<void> {
  if (r === undefined) return
  if (r.child.exitCode === null) r.child.kill('SIGTERM')
  assert.equal(await r.exited, 0, 'the relay stops cleanly with its web app')
  await rm(r.home, { recursive: true, force: true })
}

/** The page the relay's web server answers for `/` when asked under the host name `host`. */
function pageFor(url: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      const body: Buffer[] = []
      res.on('data', (d: Buffer) => body.push(d))
      res.on('end', () => resolve(Buffer.concat(body).toString()))
    })
    req.on('error', reject)
    req.end()
  })
}

async function startSite(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/big.bin') return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(BIG)
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end('<!doctype html><title>files</title><h1 id="title">Files through a relay</h1>')
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

describe('warren relay --web in Chromium', { skip: SKIP, timeout: 240_000 }, () => {
  let relay: RelayProcess
  let host: WarrenNode
  let site: Awaited<ReturnType<typeof startSite>>
  let chrome: Awaited<ReturnType<typeof launchChromium>>

  before(async () => {
    const hostKey = await nodeKey()
    relay = await spawnRelay(await relayHome({ allow: [hostKey.id] }), ['--web-listen', '127.0.0.1:0'])
    site = await startSite()
    host = await startNode({ key: hostKey, config: { relays: [relay.tcp] } })
    chrome = await launchChromium()
  })

  after(async () => {
    await chrome?.close()
    await host?.stop()
    await site?.close()
    await stopRelay(relay)
  })

  it("the page carries the relay's own WebSocket address, at the name it was opened by", async () => {
    const wsPort = (await relayStatus(relay)).addrs.find((a) => a.includes('/ws/'))!.split('/')[4]
    const named = await pageFor(relay.web, 'relay.example.net:8080')
    assert.match(named, new RegExp(`data-relay="/dns4/relay\\.example\\.net/tcp/${wsPort}/ws/p2p/${relay.id}"`))
    const own = `site.${formatNodeIdBase36(host.peerId)}.relay.example.net`
    assert.match(await pageFor(relay.web, own), /data-relay="\/dns4\/relay\.example\.net\//)
    const ip = await pageFor(relay.web, `127.0.0.1:${new URL(relay.web).port}`)
    assert.match(ip, new RegExp(`data-relay="/ip4/127\\.0\\.0\\.1/tcp/${wsPort}/ws/p2p/${relay.id}"`))
  })

  it('renders a service of an admitting node and fetches 3 times the stranger data limit over one circuit', async () => {
    const page = await chrome.context.newPage()
    await page.goto(relay.web)
    await page.waitForFunction("document.getElementById('node').textContent.startsWith('12D3KooW')", null, {
      timeout: 60_000,
    })
    const browserId = (await page.textContent('#node'))!
    host.expose('files', { target: `/tcp/${site.port}`, allow: [browserId], kubo: false })
    await eventually(
      async () =>
        (await relayStatus(relay)).reservations.find((r) => r.node === host.peerId.toString())?.admits?.ids === 1,
      { timeoutMs: 15_000, message: 'the relay knows the host admits the browser' },
    )
    await page.close()
    // a new tab: the link only differs from the open page by its hash, which would not load the page again
    const tab = await chrome.context.newPage()
    await tab.goto(`${relay.web}#${host.identity().ticket}/files`)
    await tab.waitForURL(/\/s\/.+\/files\//, { timeout: 30_000 })
    await tab.waitForSelector('#title', { timeout: 60_000 })
    assert.equal(await tab.textContent('#title'), 'Files through a relay')
    const sha = await tab.evaluate(`fetch('big.bin')
      .then((r) => r.arrayBuffer())
      .then((b) => crypto.subtle.digest('SHA-256', b))
      .then((d) => [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join(''))`)
    assert.equal(sha, BIG_SHA)
    const st = await relayStatus(relay)
    const circuit = st.circuits.find((c) => c.src === browserId)
    assert.ok(circuit !== undefined, `the browser's circuit is open: ${JSON.stringify(st.circuits)}`)
    assert.equal(circuit.limit, undefined, 'no stranger limits on a circuit from an admitted browser')
    assert.ok(circuit.bytes > 3 * LIMIT, `relayed ${circuit.bytes} bytes`)
    await tab.close()
  })
})

async function relayStatus(r: RelayProcess): Promise<RelayStatus> {
  const res = await runCli(['--home', r.home, 'relay', 'status', '--json'])
  assert.equal(res.code, 0, res.stderr)
  return JSON.parse(res.stdout) as RelayStatus
}

describe('warren relay --web with a certificate', () => {
  const hasOpenssl = (): boolean => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }

  it('serves the app over HTTPS with the WebSocket certificate; the page dials wss at --web-domain', {
    skip: hasOpenssl() ? false : 'openssl is not installed',
  }, async () => {
    const home = await relayHome()
    const cert = join(home, 'cert.pem')
    const key = join(home, 'key.pem')
    const subject = ['-subj', '/CN=relay.example.net', '-addext', 'subjectAltName=DNS:relay.example.net']
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1']
    execFileSync('openssl', ['req', '-x509', ...ec, ...subject, '-keyout', key, '-out', cert], { stdio: 'ignore' })
    const relay = await spawnRelay(home, [
      ...['--ws', '0', '--cert', cert, '--key', key],
      ...['--web-listen', '127.0.0.1:0', '--web-domain', 'Relay.Example.net'],
    ])
    try {
      const url = new URL(relay.web)
      assert.equal(`${url.protocol}//${url.hostname}`, 'https://relay.example.net')
      const wss = (await relayStatus(relay)).addrs.find((a) => a.includes('/tls/ws/'))!
      const page = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port: url.port, path: '/', servername: 'relay.example.net', ca: readFileSync(cert) },
          (res) => {
            const body: Buffer[] = []
            res.on('data', (d: Buffer) => body.push(d))
            res.on('end', () => resolve(Buffer.concat(body).toString()))
          },
        )
        req.on('error', reject)
        req.end()
      })
      assert.ok(
        page.includes(`data-relay="/dns4/relay.example.net/tcp/${wss.split('/')[4]}/tls/ws/p2p/${relay.id}"`),
        page,
      )
    } finally {
      await stopRelay(relay)
    }
  })
})

describe('warren relay --web behind a TLS proxy', () => {
  it("the app is opened at https://<proxy host>/ and the page dials the proxy's wss port", async () => {
    const home = await relayHome()
    const relay = await spawnRelay(home, [
      '--ws',
      '0',
      '--behind-proxy',
      'relay.example.net',
      '--web-listen',
      '127.0.0.1:0',
    ])
    try {
      assert.equal(relay.web, 'https://relay.example.net/')
      assert.match(relay.local, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'plain HTTP on loopback, for the proxy')
      assert.deepEqual((await relayStatus(relay)).web, { url: relay.web, local: relay.local })
      const human = await runCli(['--home', home, 'relay', 'status'])
      assert.match(
        human.stdout,
        new RegExp(
          `\\nweb app +https://relay\\.example\\.net/#<ticket>/<service> \\(listening on ${relay.local}\\)\\n`,
        ),
      )
      // the proxy forwards everything but WebSocket upgrades to the web port, with the Host the browser used
      const page = await pageFor(relay.local, 'relay.example.net')
      assert.ok(page.includes(`data-relay="/dns4/relay.example.net/tcp/443/tls/ws/p2p/${relay.id}"`), page)
    } finally {
      await stopRelay(relay)
    }
  })
})

describe('warren relay --web: bad input', () => {
  let home: string
  before(async () => {
    home = await relayHome()
  })
  after(async () => {
    await rm(home, { recursive: true, force: true })
  })

  it('a web port in use stops the relay with ERR_LISTEN_FAILED and the flag to change', async () => {
    const taken = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r))
    const port = (taken.address() as AddressInfo).port
    try {
      const r = await runCli([
        '--home',
        home,
        'relay',
        '--listen',
        '/ip4/127.0.0.1/tcp/0',
        '--web-listen',
        `127.0.0.1:${port}`,
      ])
      assert.equal(r.code, 6)
      assert.ok(
        r.stderr.endsWith(
          `warren: the relay cannot serve the web app on 127.0.0.1:${port}: address in use\n` +
            'hint: Pass another --web-listen <host:port> (or web.port in relay.json), or stop the process that holds it.\n',
        ),
        r.stderr,
      )
    } finally {
      await new Promise<void>((r) => taken.close(() => r()))
    }
  })

  it('refuses a --web-domain that is no DNS name, a bad --web-listen and --web without a WebSocket port', async () => {
    const domain = await runCli(['--home', home, 'relay', '--web-domain', 'https://relay.example.net'])
    assert.equal(domain.code, 2)
    assert.equal(
      domain.stderr,
      'warren: --web-domain "https://relay.example.net" is not a DNS name such as relay.example.net\n' +
        'hint: Give the name browsers open the relay by (the name of its certificate), without a scheme or port.\n',
    )
    const listen = await runCli(['--home', home, 'relay', '--web-listen', '8443'])
    assert.equal(listen.code, 2)
    assert.equal(
      listen.stderr,
      'warren: --web-listen "8443" is not <host>:<port>\n' +
        'hint: For example --web-listen 0.0.0.0:8443, --web-listen [::]:8443 or --web-listen 127.0.0.1:8080.\n',
    )
    const bare = await mkdtemp(join(tmpdir(), 'warren-relay-web-'))
    try {
      const noWs = await runCli(['--home', bare, 'relay', '--web'])
      assert.equal(noWs.code, 3)
      assert.match(
        noWs.stderr,
        /web: needs a WebSocket port for the page to reach the relay \(set "ws": \{ "port": 4002 \} or pass --ws 4002\)/,
      )
    } finally {
      await rm(bare, { recursive: true, force: true })
    }
  })
})
