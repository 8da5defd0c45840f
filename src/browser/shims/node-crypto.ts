/**
 * The part of `node:crypto` that browser-bundled Warren modules use (`createHash('sha256')`, for ticket checksums),
 * on @noble/hashes. scripts/build-browser.ts maps `node:crypto` here; Node never loads this file.
 */
import { sha256 } from '@noble/hashes/sha2.js'

interface Hash {
  update(data: Uint8Array): Hash
  digest(): Uint8Array
}

export function createHash(algorithm: string): Hash {
  if (algorithm !== 'sha256') throw new Error(`createHash("${algorithm}") is not available in the browser bundle`)
  const h = sha256.create()
  const hash: Hash = {
    update: (data) => {
      h.update(data)
      return hash
    },
    digest: () => h.digest(),
  }
  return hash
}
