/**
 * The node's Ed25519 key on disk: `$WARREN_HOME/key`, base64 of the libp2p protobuf encoding, mode 0600.
 *
 * Loading refuses a key that other users can read or write, and says how to fix it.
 */
import { randomBytes } from 'node:crypto'
import { link, open, readFile, rename, rm, stat } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { WarrenError } from '../errors.ts'

export const KEY_FILE_MODE = 0o600

/** Creates a new Ed25519 key. */
export async function generateNodeKey(): Promise<PrivateKey> {
  return generateKeyPair('Ed25519')
}

/**
 * Writes the key with mode 0600. With `overwrite: false` (the default) an existing file is an error,
 * so a key is never replaced silently.
 */
export async function saveNodeKey(path: string, key: PrivateKey, opts: { overwrite?: boolean } = {}): Promise<void> {
  const text = `${Buffer.from(privateKeyToProtobuf(key)).toString('base64')}\n`
  // the key is written to a fresh 0600 file and moved into place, so it is never readable by others, not even
  // for a moment through an existing file with a wider mode
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', KEY_FILE_MODE)
  try {
    await fh.chmod(KEY_FILE_MODE) // the umask must not widen it
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    if (opts.overwrite === true) await rename(tmp, path)
    else await link(tmp, path) // fails with EEXIST instead of replacing
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new WarrenError('ERR_HOME_EXISTS', `a key already exists at ${path}`, {
        hint: 'Use `warren init --force` to replace it (the node id will change).',
        details: { path },
      })
    }
    throw err
  } finally {
    await rm(tmp, { force: true })
  }
}

/** Loads the key, refusing one with group/other permissions or one that does not decode. */
export async function loadNodeKey(path: string): Promise<PrivateKey> {
  let info: Awaited<ReturnType<typeof stat>>
  try {
    info = await stat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new WarrenError('ERR_HOME_NOT_INITIALIZED', `no key at ${path}`, {
        hint: 'Run `warren init` first (set WARREN_HOME to use another home).',
        details: { path },
      })
    }
    throw err
  }
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(3, '0')
    throw new WarrenError('ERR_KEY_PERMISSIONS', `key file ${path} has mode ${mode}; other users could read it`, {
      hint: `Run \`chmod 600 ${path}\`, then start again.`,
      details: { path, mode },
    })
  }
  const text = (await readFile(path, 'utf8')).trim()
  try {
    const key = privateKeyFromProtobuf(Buffer.from(text, 'base64'))
    if (key.type !== 'Ed25519') throw new Error(`key type is ${key.type}`)
    return key
  } catch (err) {
    throw new WarrenError(
      'ERR_KEY_INVALID',
      `key file ${path} does not hold an Ed25519 key (${(err as Error).message})`,
      {
        hint: 'Restore the file from a backup, or create a new identity with `warren init --force`.',
        details: { path },
        cause: err,
      },
    )
  }
}
