/**
 * Two daemons for the dashboard and metrics tests: `a` offers `services` to `b`, `b` knows `a` by the alias `a`;
 * each serves its dashboard and metrics on its access port (`http://warren.localhost:<port of access>/`) and on an
 * address of their own (`warren up --metrics 127.0.0.1:0`), which `ui` names.
 */
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { HomePaths } from '../../src/config/home.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { loadNodeKey } from '../../src/identity/keys.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from '../support/daemon.ts'

export interface UiNode {
  d: TestDaemon
  home: HomePaths
  id: string
  /** host:port of its dashboard and metrics on their own address (metrics.listen). */
  ui: string
  /** host:port of its access port, where warren.localhost:<port> serves the dashboard too. */
  access: string
}

export interface UiPair {
  a: UiNode
  b: UiNode
  close(): Promise<void>
}

const ACCESS_LINE = / info {2}dashboard on http:\/\/warren\.localhost:(\d+)\//m
const UI_LINE = / info {2}dashboard and metrics also on http:\/\/warren\.localhost:(\d+)\//m

async function addressesOf(d: TestDaemon): Promise<{ ui: string; access: string }> {
  await d.waitForLog(UI_LINE)
  await d.waitForLog(ACCESS_LINE)
  return { ui: `127.0.0.1:${UI_LINE.exec(d.stderr)![1]}`, access: `127.0.0.1:${ACCESS_LINE.exec(d.stderr)![1]}` }
}

export async function startUiPair(services: ConfigInput['services']): Promise<UiPair> {
  const bHome = await makeHome()
  const bId = peerIdFromPrivateKey(await loadNodeKey(bHome.key)).toString()
  const aHome = await makeHome(testConfig({ services, peers: { b: bId } }))
  const a = await TestDaemon.start(aHome, ['--metrics', '127.0.0.1:0'])
  const ident = await a.identity()
  await writeConfig(bHome, testConfig({ peers: { a: ident.ticket } }))
  const b = await TestDaemon.start(bHome, ['--metrics', '127.0.0.1:0'])
  return {
    a: { d: a, home: aHome, id: ident.id, ...(await addressesOf(a)) },
    b: { d: b, home: bHome, id: bId, ...(await addressesOf(b)) },
    async close() {
      await Promise.all([a.stop(), b.stop()])
      await Promise.all([removeHome(aHome), removeHome(bHome)])
    },
  }
}
