/**
 * Fuzzing config.json and listen addresses: any JSON value (random, or config-shaped with valid and broken
 * fields mixed) validates or throws ERR_CONFIG_INVALID; any file text loads or throws ERR_CONFIG_PARSE /
 * ERR_CONFIG_INVALID; a validated config validates again to itself; listen addresses round-trip and any string
 * parses or throws ERR_BAD_ADDRESS.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import fc from 'fast-check'
import { formatListenAddress, isPublicListen, parseListenAddress } from '../../src/config/listen-address.ts'
import { loadConfig, validateConfig } from '../../src/config/load.ts'
import type { Config } from '../../src/config/schema.ts'
import { WarrenError } from '../../src/errors.ts'
import { generateNodeKey } from '../../src/identity/keys.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import { encodeTicket } from '../../src/identity/ticket.ts'
import { fuzz, fuzzAsync, nastyString, parsesOrRefuses } from './fuzz-kit.ts'

const port = fc.integer({ min: 0, max: 65535 })
const octet = fc.integer({ min: 0, max: 255 })
const ip4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'))
const ip6 = fc.ipV6()
const hostName = fc.domain().filter((d) => d.length <= 253)
const listenText = fc.oneof(
  fc.tuple(fc.oneof(ip4, hostName, fc.constant('localhost')), port).map(([h, p]) => `${h}:${p}`),
  fc.tuple(ip6, port).map(([h, p]) => `[${h}]:${p}`),
  port.map(String),
  nastyString(['127.0.0.1', ':', '[', ']', '::1', '5432', '0.0.0.0', 'localhost', '65536', '-1']),
)

/** Checks a value the schema accepted: validating it again (as JSON) gives the same config. */
function revalidates(cfg: Config): void {
  const again = validateConfig(JSON.parse(JSON.stringify(cfg)))
  assert.deepEqual(again, cfg)
}

describe('fuzz: listen addresses', () => {
  it('host:port round trips', () => {
    fuzz(
      'listen-address round trip',
      fc.tuple(fc.oneof(ip4, ip6, hostName), port),
      ([host, p]) => {
        const text = formatListenAddress({ host, port: p })
        assert.deepEqual(parseListenAddress(text), { host, port: p })
      },
      { runs: 200 },
    )
  })

  it('any string is a listen address or ERR_BAD_ADDRESS', () => {
    fuzz(
      'listen-address parse',
      fc.oneof(fc.string(), fc.string({ unit: 'binary' }), listenText),
      (s) =>
        parsesOrRefuses(
          () => parseListenAddress(s),
          { code: 'ERR_BAD_ADDRESS' },
          (a) => {
            assert.ok(Number.isInteger(a.port) && a.port >= 0 && a.port <= 65535)
            assert.ok(a.host.length > 0 && !/[\s/]/.test(a.host))
            assert.deepEqual(parseListenAddress(formatListenAddress(a)), a)
            assert.equal(typeof isPublicListen(s), 'boolean')
          },
        ),
      { runs: 400 },
    )
  })
})

describe('fuzz: config.json', () => {
  let refs: string[]
  let dir: string
  before(async () => {
    const id = peerIdFromPrivateKey(await generateNodeKey())
    refs = [
      id.toString(),
      formatNodeIdBase36(id),
      encodeTicket({ id, addrs: [multiaddr('/ip4/127.0.0.1/tcp/4781')] }),
      `${id.toString().slice(0, 40)}`,
      'warrenaaaa',
    ]
    dir = await mkdtemp(join(tmpdir(), 'warren-fuzz-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  /** Config-shaped objects: known keys with values that are right, wrong, or strange. */
  const configShaped = () => {
    const label = fc.oneof(
      fc.constantFrom('web', 'db', 'laptop', 'n1', 'a-b', 'x'),
      nastyString(['a', '-', 'A', '1'], 8),
    )
    const ref = fc.oneof(
      fc.integer({ min: 0, max: 4 }).map((i) => refs[i]!),
      nastyString(['12D3KooW', 'warren', 'k51qzi5uqu5'], 10),
    )
    const maddr = fc.oneof(
      fc.tuple(ip4, port).map(([h, p]) => `/ip4/${h}/tcp/${p}`),
      fc.tuple(ip4, port).map(([h, p]) => `/ip4/${h}/udp/${p}`),
      nastyString(['/ip4/', '/tcp/', '/p2p/', '1.2.3.4', '/dns4/x', '/udp/0'], 8),
    )
    const target = fc.oneof(
      port.map((p) => `/tcp/${p}`),
      fc.tuple(ip4, port).map(([h, p]) => `/ip4/${h}/tcp/${p}`),
      maddr,
    )
    const service = fc.oneof(
      target,
      fc.record(
        {
          target,
          allow: fc.array(fc.oneof(fc.constant('*'), label, ref), { maxLength: 3 }),
          kubo: fc.oneof(fc.boolean(), fc.jsonValue()),
          type: fc.constantFrom('tcp', 'http', 'udp', 1),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue(),
    )
    const num = fc.oneof(fc.integer({ min: -10, max: 2_000_000 }), fc.double(), fc.jsonValue())
    return fc.record(
      {
        listen: fc.oneof(fc.array(maddr, { maxLength: 3 }), fc.jsonValue()),
        announce: fc.array(maddr, { maxLength: 2 }),
        peers: fc.dictionary(label, ref, { maxKeys: 3 }),
        services: fc.dictionary(label, service, { maxKeys: 3 }),
        api: fc.record({ socket: fc.oneof(fc.string(), fc.jsonValue()) }, { requiredKeys: [] }),
        limits: fc.record(
          { connectTimeoutMs: num, maxStreams: num, maxStreamsPerPeer: num, dialTimeoutMs: num },
          { requiredKeys: [] },
        ),
        relays: fc.array(
          fc.oneof(
            maddr,
            fc.constant('/ip4/1.2.3.4/tcp/1/p2p/').chain((p) => fc.integer({ min: 0, max: 4 }).map((i) => p + refs[i])),
          ),
          { maxLength: 2 },
        ),
        proxy: fc.record(
          {
            listen: listenText,
            enabled: fc.boolean(),
            auth: fc.oneof(
              fc.record({ username: fc.string({ maxLength: 300 }), password: fc.string({ maxLength: 3 }) }),
              fc.jsonValue(),
            ),
            tld: label,
            maxHeaderBytes: num,
            headersTimeoutMs: num,
            maxStreamsPerPeer: num,
          },
          { requiredKeys: [] },
        ),
        gateway: fc.record({ enabled: fc.boolean(), responseTimeoutMs: num }, { requiredKeys: [] }),
        dns: fc.record(
          { enabled: fc.boolean(), listen: listenText, ttl: num, public: fc.oneof(fc.boolean(), fc.jsonValue()) },
          { requiredKeys: [] },
        ),
        discovery: fc.record(
          {
            dht: fc.boolean(),
            dhtMode: fc.constantFrom('auto', 'server', 'client', 'other'),
            mdns: fc.boolean(),
            lookupTimeoutMs: num,
            cacheTtlMs: num,
            bootstrap: fc.array(maddr, { maxLength: 2 }),
          },
          { requiredKeys: [] },
        ),
        traversal: fc.record(
          { enabled: fc.boolean(), udpListen: fc.array(maddr, { maxLength: 2 }), tcp: fc.boolean() },
          { requiredKeys: [] },
        ),
        extra: fc.jsonValue(),
      },
      { requiredKeys: [] },
    )
  }

  it('any JSON value validates (and validates again to itself) or is ERR_CONFIG_INVALID', () => {
    fuzz(
      'config validate',
      fc.oneof({ weight: 1, arbitrary: fc.jsonValue() }, { weight: 4, arbitrary: configShaped() }),
      (input) => parsesOrRefuses(() => validateConfig(input), { code: 'ERR_CONFIG_INVALID' }, revalidates),
      { runs: 300 },
    )
  })

  it('any config.json text loads or is ERR_CONFIG_PARSE / ERR_CONFIG_INVALID', async () => {
    const path = join(dir, 'config.json')
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      configShaped().map((c) => JSON.stringify(c)),
      configShaped().chain((c) =>
        fc.nat().map((cut) => {
          const s = JSON.stringify(c)
          return s.slice(0, cut % (s.length + 1))
        }),
      ),
    )
    await fuzzAsync(
      'config load',
      text,
      async (t) => {
        await writeFile(path, t)
        try {
          revalidates(await loadConfig(path))
        } catch (err) {
          assert.ok(
            err instanceof WarrenError && (err.code === 'ERR_CONFIG_PARSE' || err.code === 'ERR_CONFIG_INVALID'),
            `unexpected ${(err as Error).constructor.name}: ${(err as Error).message}`,
          )
        }
      },
      { runs: 100 },
    )
  })
})
