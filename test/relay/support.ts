/** Relays, nodes and transfers for the relay tests: real libp2p nodes on 127.0.0.1, no mocks. */
import { createHash, randomBytes } from 'node:crypto'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { validateConfig } from '../../src/config/load.ts'
import type { ConfigInput } from '../../src/config/schema.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { WarrenNode } from '../../src/node/warren-node.ts'
import type { PresetName } from '../../src/p2p/presets.ts'
import { type RelayConfigInput, validateRelayConfig } from '../../src/relay/server/config.ts'
import { type Relay, startRelay } from '../../src/relay/server/relay-node.ts'

export interface TestRelay extends Relay {
  /** Log lines (`level message`). */
  lines: string[]
}

/** A relay on 127.0.0.1 (TCP port 0, STUN on 127.0.0.1:0) with the given settings on top. */
export async function startTestRelay(config: RelayConfigInput = {}): Promise<TestRelay> {
  const lines: string[] = []
  const relay = await startRelay({
    privateKey: await generateNodeKey(),
    config: validateRelayConfig({ listen: ['/ip4/127.0.0.1/tcp/0'], stun: { host: '127.0.0.1', port: 0 }, ...config }),
    log: (level, message) => lines.push(`${level} ${message}`),
  })
  return Object.assign(relay, { lines })
}

export interface NodeKey {
  key: PrivateKey
  id: string
}

export async function nodeKey(): Promise<NodeKey> {
  const key = await generateNodeKey()
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

/**
 * A node on the test preset. By default it listens nowhere, so the only way to reach it is through its relay (the
 * tests would otherwise connect directly over loopback).
 */
export async function startNode(
  opts: { key?: NodeKey; config?: ConfigInput; listen?: string[]; lines?: string[]; preset?: PresetName } = {},
): Promise<WarrenNode> {
  return WarrenNode.start({
    privateKey: (opts.key ?? (await nodeKey())).key,
    // relay tests measure relayed paths: no direct-path upgrade (tested in test/lab)
    config: validateConfig({ traversal: { enabled: false }, ...opts.config }),
    listen: opts.listen ?? [],
    preset: opts.preset ?? 'test',
    accessListen: false,
    log: (level, message) => opts.lines?.push(`${level} ${message}`),
  })
}

export interface TransferResult {
  sent: number
  sha256: string
  /** What the hash server answered: `<bytes> <sha256>`. */
  answer: string
  ms: number
}

/**
 * Sends `bytes` random bytes on a service stream to a hash server (test/support/servers.ts), half-closes and reads
 * its answer. Bounded in bytes and by `timeoutMs`.
 */
export async function transfer(stream: Stream, bytes: number, timeoutMs = 60_000): Promise<TransferResult> {
  const started = performance.now()
  const hash = createHash('sha256')
  const chunk = 64 * 1024
  const timer = setTimeout(() => stream.abort(new Error(`transfer did not finish within ${timeoutMs} ms`)), timeoutMs)
  const answer: Buffer[] = []
  const reading = (async () => {
    for await (const c of stream) answer.push(Buffer.from(c.subarray()))
  })()
  // a stream cut under the sender ends the reading with the same error: awaited below, never left unhandled
  reading.catch(() => {})
  try {
    let sent = 0
    while (sent < bytes) {
      const buf = randomBytes(Math.min(chunk, bytes - sent))
      hash.update(buf)
      sent += buf.length
      if (!stream.send(buf)) {
        await stream.onDrain({ signal: AbortSignal.timeout(timeoutMs) }).catch((e: unknown) => {
          throw e instanceof Error ? e : new Error(`the stream closed after ${sent} bytes (${stream.status})`)
        })
      }
    }
    // libp2p's close() never settles when the stream is aborted while it waits for 'drain' (its 'close' came first):
    // the reading ends with the abort's error, so race them
    await Promise.race([stream.close(), reading])
    await reading
    return {
      sent,
      sha256: hash.digest('hex'),
      answer: Buffer.concat(answer).toString(),
      ms: performance.now() - started,
    }
  } finally {
    clearTimeout(timer)
  }
}

/** Polls `check` every 50 ms until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
