/**
 * Two daemons for the dashboard and metrics tests: `a` offers `services` to `b`, `b` knows `a` by the alias `a`;
 * each serves its dashboard and metrics (`warren up --metrics 127.0.0.1:0`) at the address `ui` names.
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
  /** host:port of its dashboard and metrics. */
  ui: string
}

export interface UiPair {
  a: UiNode
  b: UiNode
  close(): Promise<void>
}

async function uiOf(d: TestDaemon): Promise<string> {
  await d.waitForLog(/ info {2}dashboard on http:\/\/warren\.localhost:\d+\//m)
  const port = / info {2}dashboard on http:\/\/warren\.localhost:(\d+)\//m.exec(d.stderr)![1]
  return `127.0.0.1:${port}`
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
    a: { d: a, home: aHome, id: ident.id, ui: await uiOf(a) },
    b: { d: b, home: bHome, id: bId, ui: await uiOf(b) },
    async close() {
      await Promise.all([a.stop(), b.stop()])
      await Promise.all([removeHome(aHome), removeHome(bHome)])
    },
  }
}
