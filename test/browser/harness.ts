/**
 * The browser tests' harness: the bundle (built once per process), a loopback HTTP server that serves a blank page
 * and dist/browser/warren.js from one origin, and Debian's Chromium driven by playwright-core.
 */
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'
import { buildBrowser } from '../../scripts/build-browser.ts'

export const CHROMIUM = '/usr/bin/chromium'
export const SKIP = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`

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

let built: Promise<string> | undefined

/** Builds the bundles once per test process, into a directory of its own; resolves with that directory. */
export function buildOnce(): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warren-browser-build-'))
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    await buildBrowser({ outDir: dir })
    return dir
  })()
  return built
}

/** Serves `/` (a blank page) and `/warren.js` (the bundle) on 127.0.0.1. */
export async function startPageServer(): Promise<{ url: string; close(): Promise<void> }> {
  const BUNDLE = join(await buildOnce(), 'warren.js')
  const server: Server = createServer((req, res) => {
    if (req.url === '/warren.js') {
      void readFile(BUNDLE).then((code) => res.writeHead(200, { 'content-type': 'text/javascript' }).end(code))
      return
    }
    if (req.url === '/warren.js.map') {
      void readFile(`${BUNDLE}.map`).then((code) => res.writeHead(200).end(code))
      return
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>warren test</title><p id="out"></p>')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/** A Chromium with a fresh profile; `close` removes the profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(join(tmpdir(), 'warren-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: 60_000,
  })
  return {
    context,
    close: async () => {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}
