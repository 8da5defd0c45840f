/**
 * The invite store on its own (src/node/invites.ts): single use across a restart of the store, expiry by its clock,
 * a code for another service, the per-node and all-nodes limits of failed codes, the file (hashes only, 0600), and a
 * failed admission giving the invite back.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isWarrenError, WarrenError } from '../../src/errors.ts'
import { FAIL_WINDOW_MS, InviteStore, MAX_FAILS_GLOBAL } from '../../src/node/invites.ts'

const A = '12D3KooWA'
const B = '12D3KooWB'

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    assert.ok(isWarrenError(err), String(err))
    return err.code
  }
  return 'resolved'
}

describe('InviteStore', () => {
  let dir: string
  let now = 1_000_000
  const admitted: string[] = []
  const opts = {
    admit: async (service: string, id: string) => {
      if (service === 'broken') throw new WarrenError('ERR_CONFIG_INVALID', 'config.json is invalid')
      admitted.push(`${service} ${id}`)
    },
    hasService: (s: string) => s !== 'nope',
    now: () => now,
  }
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'warren-invites-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('a code works once, also after the store is opened again; the file holds only its hash, mode 0600', async () => {
    const path = join(dir, 'once.json')
    const store = await InviteStore.open(path, opts)
    const inv = await store.create('web', 60_000)
    assert.deepEqual(await store.redeem('web', inv.code, A), { service: 'web', node: A, already: false })
    assert.deepEqual(admitted, [`web ${A}`])
    assert.equal((await stat(path)).mode & 0o777, 0o600)
    assert.ok(!(await readFile(path, 'utf8')).includes(inv.code))
    const reopened = await InviteStore.open(path, opts)
    assert.equal(await codeOf(reopened.redeem('web', inv.code, B)), 'ERR_INVITE_USED')
    assert.deepEqual(await reopened.redeem('web', inv.code, A), { service: 'web', node: A, already: true })
    assert.deepEqual(reopened.open(), {})
  })

  it('expired, another service, forged, unknown service, bad ttl', async () => {
    const store = await InviteStore.open(join(dir, 'bad.json'), opts)
    const inv = await store.create('web', 1_000)
    assert.deepEqual(store.open(), { web: 1 })
    assert.equal(await codeOf(store.redeem('db', inv.code, A)), 'ERR_INVITE_INVALID')
    assert.equal(await codeOf(store.redeem('web', `${inv.code}x`, A)), 'ERR_INVITE_INVALID')
    now += 1_000
    assert.equal(await codeOf(store.redeem('web', inv.code, A)), 'ERR_INVITE_EXPIRED')
    assert.equal(await codeOf(store.create('nope')), 'ERR_SERVICE_NOT_FOUND')
    await assert.rejects(store.create('web', 999), /time to live must be 1 s to 30 days, not 999 ms/)
  })

  it('a failed admission gives the invite back', async () => {
    const store = await InviteStore.open(join(dir, 'broken.json'), opts)
    const inv = await store.create('broken', 60_000)
    assert.equal(await codeOf(store.redeem('broken', inv.code, A)), 'ERR_CONFIG_INVALID')
    assert.deepEqual(store.open(), { broken: 1 })
  })

  it('5 failed codes lock a node out for the window; all nodes together are bounded too', async () => {
    const store = await InviteStore.open(join(dir, 'limit.json'), opts)
    const inv = await store.create('web', 3_600_000)
    for (let i = 0; i < 5; i++) assert.equal(await codeOf(store.redeem('web', 'x', 'peer-1')), 'ERR_INVITE_INVALID')
    assert.equal(await codeOf(store.redeem('web', inv.code, 'peer-1')), 'ERR_INVITE_RATE_LIMITED')
    now += FAIL_WINDOW_MS
    assert.equal(await codeOf(store.redeem('web', 'x', 'peer-1')), 'ERR_INVITE_INVALID', 'the window passed')
    now += FAIL_WINDOW_MS
    for (let i = 0; i < MAX_FAILS_GLOBAL; i++) await codeOf(store.redeem('web', 'x', `many-${i}`))
    assert.equal(await codeOf(store.redeem('web', inv.code, 'fresh')), 'ERR_INVITE_RATE_LIMITED')
    now += 60_000
    assert.deepEqual(await store.redeem('web', inv.code, 'fresh'), { service: 'web', node: 'fresh', already: false })
  })

  it('a file that is not JSON is ERR_CONFIG_PARSE naming it', async () => {
    const path = join(dir, 'junk.json')
    await writeFile(path, '{ nope')
    await assert.rejects(InviteStore.open(path, opts), (err: WarrenError) => {
      assert.equal(err.code, 'ERR_CONFIG_PARSE')
      assert.match(err.message, /junk\.json is not valid JSON/)
      return true
    })
  })
})
