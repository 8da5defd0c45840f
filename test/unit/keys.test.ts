import assert from 'node:assert/strict'
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateNodeKey, KEY_FILE_MODE, loadNodeKey, saveNodeKey } from '../../src/identity/keys.ts'

const dirs: string[] = []
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})
async function keyPath(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'warren-keys-'))
  dirs.push(d)
  return join(d, 'key')
}
const modeOf = async (p: string) => (await stat(p)).mode & 0o777

describe('node keys', () => {
  it('generates Ed25519 keys', async () => {
    const key = await generateNodeKey()
    assert.equal(key.type, 'Ed25519')
  })

  it('saves with mode 0600 and loads the same key back', async () => {
    const path = await keyPath()
    const key = await generateNodeKey()
    await saveNodeKey(path, key)
    assert.equal(await modeOf(path), KEY_FILE_MODE)
    assert.equal(KEY_FILE_MODE, 0o600)
    const back = await loadNodeKey(path)
    assert.ok(back.equals(key))
    assert.ok(peerIdFromPrivateKey(back).equals(peerIdFromPrivateKey(key)))
    assert.match(await readFile(path, 'utf8'), /^[A-Za-z0-9+/]+=*\n$/)
  })

  it('keeps mode 0600 even with a permissive umask', async () => {
    const old = process.umask(0)
    try {
      const path = await keyPath()
      await saveNodeKey(path, await generateNodeKey())
      assert.equal(await modeOf(path), 0o600)
    } finally {
      process.umask(old)
    }
  })

  it('narrows the mode of a world-readable file it overwrites', async () => {
    const path = await keyPath()
    await writeFile(path, 'old', { mode: 0o644 })
    await chmod(path, 0o644)
    await saveNodeKey(path, await generateNodeKey(), { overwrite: true })
    assert.equal(await modeOf(path), 0o600)
  })

  it('never overwrites an existing key silently', async () => {
    const path = await keyPath()
    const first = await generateNodeKey()
    await saveNodeKey(path, first)
    await assert.rejects(saveNodeKey(path, await generateNodeKey()), {
      code: 'ERR_HOME_EXISTS',
      message: `a key already exists at ${path}`,
      hint: 'Use `warren init --force` to replace it (the node id will change).',
      details: { path },
    })
    assert.ok((await loadNodeKey(path)).equals(first), 'the first key is still there')
  })

  it('overwrites when asked', async () => {
    const path = await keyPath()
    await saveNodeKey(path, await generateNodeKey())
    const second = await generateNodeKey()
    await saveNodeKey(path, second, { overwrite: true })
    assert.ok((await loadNodeKey(path)).equals(second))
  })

  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o666]) {
    const shown = mode.toString(8)
    it(`refuses to load a key file with mode ${shown}, saying how to fix it`, async () => {
      const path = await keyPath()
      await saveNodeKey(path, await generateNodeKey())
      await chmod(path, mode)
      await assert.rejects(loadNodeKey(path), {
        code: 'ERR_KEY_PERMISSIONS',
        message: `key file ${path} has mode ${shown}; other users could read it`,
        hint: `Run \`chmod 600 ${path}\`, then start again.`,
        details: { path, mode: shown },
      })
      await chmod(path, 0o600)
      await loadNodeKey(path)
    })
  }

  it('loads a key with a stricter mode (0400)', async () => {
    const path = await keyPath()
    const key = await generateNodeKey()
    await saveNodeKey(path, key)
    await chmod(path, 0o400)
    assert.ok((await loadNodeKey(path)).equals(key))
  })

  it('a missing key says to run warren init', async () => {
    const path = await keyPath()
    await assert.rejects(loadNodeKey(path), {
      code: 'ERR_HOME_NOT_INITIALIZED',
      message: `no key at ${path}`,
      hint: 'Run `warren init` first (set WARREN_HOME to use another home).',
    })
  })

  it('a corrupt key file is ERR_KEY_INVALID', async () => {
    const path = await keyPath()
    await writeFile(path, 'this is not a key\n', { mode: 0o600 })
    await assert.rejects(loadNodeKey(path), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'ERR_KEY_INVALID')
      assert.match(err.message, new RegExp(`^key file ${path} does not hold an Ed25519 key \\(.+\\)$`))
      assert.equal(err.hint, 'Restore the file from a backup, or create a new identity with `warren init --force`.')
      return true
    })
  })

  it('a key of another type is ERR_KEY_INVALID', async () => {
    const path = await keyPath()
    const secp = await generateKeyPair('secp256k1')
    await writeFile(path, `${Buffer.from(privateKeyToProtobuf(secp)).toString('base64')}\n`, { mode: 0o600 })
    await assert.rejects(loadNodeKey(path), {
      code: 'ERR_KEY_INVALID',
      message: `key file ${path} does not hold an Ed25519 key (key type is secp256k1)`,
    })
  })
})
