/**
 * Two real daemons on loopback for end-to-end tests: `a` offers services, `b` uses them. `b` knows `a` by the
 * alias `a` (its ticket in b's peers) and `a` lets `b` in as the alias `b`.
 */
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { HomePaths } from '../../src/config/home.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { loadNodeKey } from '../../src/identity/keys.ts'
import { makeHome, removeHome, TestDaemon, testConfig, writeConfig } from './daemon.ts'

export interface Pair {
  a: TestDaemon
  b: TestDaemon
  aHome: HomePaths
  bHome: HomePaths
  aId: string
  bId: string
  aTicket: string
  /** Restarts `b` (SIGTERM, then `warren up` again). */
  restartB(): Promise<TestDaemon>
  close(): Promise<void>
}

/** Starts `a` with `services` (its peers get `b`), then `b` with `a` as a peer. */
export async function startPair(services: ConfigInput['services']): Promise<Pair> {
  const bHome = await makeHome()
  const bPeer = peerIdFromPrivateKey(await loadNodeKey(bHome.key)).toString()
  const aHome = await makeHome(testConfig({ services, peers: { b: bPeer } }))
  const a = await TestDaemon.start(aHome)
  const aIdent = await a.identity()
  await writeConfig(bHome, testConfig({ peers: { a: aIdent.ticket } }))
  const pair: Pair = {
    a,
    b: await TestDaemon.start(bHome),
    aHome,
    bHome,
    aId: aIdent.id,
    bId: bPeer,
    aTicket: aIdent.ticket,
    async restartB() {
      await pair.b.stop('SIGTERM')
      pair.b = await TestDaemon.start(bHome)
      return pair.b
    },
    async close() {
      await Promise.all([pair.a.stop(), pair.b.stop()])
      await Promise.all([removeHome(aHome), removeHome(bHome)])
    },
  }
  return pair
}
