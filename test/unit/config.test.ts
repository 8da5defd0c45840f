import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { loadConfig, validateConfig } from '../../src/config/load.ts'
import { configSchema, defaultConfigInput } from '../../src/config/schema.ts'
import { formatNodeIdBase36 } from '../../src/identity/node-id.ts'
import { encodeTicket } from '../../src/identity/ticket.ts'

const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
const ID = id.toString()
const HINT = 'Fix the fields named above; docs/config.md describes every key.'
const LABEL_RULE = 'use 1-63 lowercase letters, digits and inner hyphens (it becomes part of a hostname)'

/** Asserts that validating `input` fails with exactly these problems, in this order. */
function invalid(input: unknown, ...problems: string[]): void {
  assert.throws(() => validateConfig(input), {
    code: 'ERR_CONFIG_INVALID',
    message: `config is invalid:\n  ${problems.join('\n  ')}`,
    hint: HINT,
    details: { problems },
  })
}

const DEFAULTS = {
  listen: ['/ip4/0.0.0.0/tcp/4781'],
  announce: [],
  peers: {},
  services: {},
  api: { socket: 'api.sock' },
  limits: {
    connectTimeoutMs: 5000,
    maxStreams: 4096,
    maxStreamsPerPeer: 1024,
    maxPublicStreams: 1024,
    maxPublicStreamsPerPeer: 64,
    dialTimeoutMs: 10000,
    maxStrangerConnections: 128,
    maxStrangerConnectionsPerIp: 16,
    maxStrangerConnectionsPerRelay: 64,
  },
  relays: [],
  rpc: { public: [], timeoutMs: 30_000, maxMessageBytes: 1024 * 1024 },
  traversal: {
    enabled: true,
    udpListen: ['/ip4/0.0.0.0/udp/0'],
    tcp: true,
    punchRequestsPerPeer: 12,
    punchRequestsPerMinute: 60,
    portMapping: { enabled: true, pcp: true, natPmp: true, upnp: true, lifetimeS: 7200 },
    webrtc: true,
  },
}

describe('config: defaults', () => {
  it('an empty object gets every default', () => {
    assert.deepEqual(validateConfig({}), DEFAULTS)
  })

  it('the config `warren init` writes is valid and equals the defaults', () => {
    assert.deepEqual(validateConfig(defaultConfigInput()), DEFAULTS)
    assert.deepEqual(validateConfig(defaultConfigInput(['/ip4/127.0.0.1/tcp/4791'])).listen, [
      '/ip4/127.0.0.1/tcp/4791',
    ])
  })

  it('partial limits keep the other defaults', () => {
    assert.deepEqual(validateConfig({ limits: { connectTimeoutMs: 250 } }).limits, {
      ...DEFAULTS.limits,
      connectTimeoutMs: 250,
    })
  })

  it('proxy and gateway are absent unless given, and get their defaults when given', () => {
    const cfg = validateConfig({ proxy: {}, gateway: {} })
    assert.deepEqual(cfg.proxy, { listen: '127.0.0.1:4780', enabled: true })
    assert.deepEqual(cfg.gateway, { enabled: true })
    assert.equal(validateConfig({}).proxy, undefined)
  })
})

describe('config: every key accepted', () => {
  it('a config using every key', () => {
    const input = {
      listen: ['/ip4/127.0.0.1/tcp/4781', '/ip4/127.0.0.1/tcp/4782/ws', '/ip6/::1/tcp/4781'],
      announce: ['/ip4/198.51.100.7/tcp/4781'],
      peers: { laptop: ID, 'nas-2': formatNodeIdBase36(id), relay1: encodeTicket({ id, addrs: [] }) },
      services: {
        web: '/tcp/8080',
        db: { target: '/ip4/10.0.0.4/tcp/5432', allow: ['laptop', ID, formatNodeIdBase36(id)] },
        pub: { target: '/ip6/::1/tcp/22', allow: ['*'], kubo: true },
        dns: '/dns4/db.lan/tcp/5432',
        dns6: '/dns6/db.lan/tcp/5432',
        anydns: '/dns/db.lan/tcp/1',
      },
      api: { socket: '/run/warren/api.sock' },
      limits: {
        connectTimeoutMs: 100,
        maxStreams: 1,
        maxStreamsPerPeer: 100000,
        maxPublicStreams: 0,
        maxPublicStreamsPerPeer: 100000,
        dialTimeoutMs: 120000,
        maxStrangerConnections: 0,
        maxStrangerConnectionsPerIp: 100000,
        maxStrangerConnectionsPerRelay: 3,
      },
      relays: [`/dns4/relay.example.net/tcp/443/wss/p2p/${ID}`],
      proxy: { listen: '127.0.0.1:1080', enabled: false },
      gateway: { enabled: false },
    }
    const cfg = validateConfig(input)
    assert.deepEqual(cfg.listen, input.listen)
    assert.deepEqual(cfg.announce, input.announce)
    assert.deepEqual(cfg.peers, input.peers)
    assert.deepEqual(cfg.services.web, { target: '/tcp/8080', kubo: false })
    assert.deepEqual(cfg.services.db, { target: '/ip4/10.0.0.4/tcp/5432', allow: input.services.db.allow, kubo: false })
    assert.deepEqual(cfg.services.pub, { target: '/ip6/::1/tcp/22', allow: ['*'], kubo: true })
    assert.equal(cfg.services.dns?.target, '/dns4/db.lan/tcp/5432')
    assert.deepEqual(cfg.api, input.api)
    assert.deepEqual(cfg.limits, input.limits)
    assert.deepEqual(cfg.relays, input.relays)
    assert.deepEqual(cfg.proxy, input.proxy)
    assert.deepEqual(cfg.gateway, input.gateway)
  })

  it('the short and long service forms mean the same', () => {
    assert.deepEqual(
      validateConfig({ services: { web: '/tcp/8080' } }).services,
      validateConfig({ services: { web: { target: '/tcp/8080' } } }).services,
    )
  })

  it('docs/config.md documents every key of the schema', async () => {
    const doc = await readFile(new URL('../../docs/config.md', import.meta.url), 'utf8')
    const keys = schemaKeys(configSchema)
    assert.ok(keys.includes('limits.connectTimeoutMs') && keys.includes('services.<name>.allow'), keys.join(', '))
    const missing = keys.filter((k) => !doc.includes(`### \`${k}\``))
    assert.deepEqual(missing, [], `add a "### \`key\`" section to docs/config.md for: ${missing.join(', ')}`)
  })
})

interface ZodLike {
  _zod: {
    def: { type: string; innerType?: ZodLike; out?: ZodLike; shape?: Record<string, ZodLike>; valueType?: ZodLike }
  }
}

/** Every key path of a zod schema: `limits.connectTimeoutMs`, `services.<name>.target`, … */
function schemaKeys(schema: unknown, prefix = ''): string[] {
  let s = schema as ZodLike
  for (;;) {
    const def = s._zod.def
    if (def.innerType !== undefined) s = def.innerType
    else if (def.type === 'pipe' && def.out !== undefined) s = def.out
    else break
  }
  const def = s._zod.def
  if (def.type === 'object' && def.shape !== undefined) {
    return Object.entries(def.shape).flatMap(([k, v]) => [prefix + k, ...schemaKeys(v, `${prefix + k}.`)])
  }
  if (def.type === 'record' && def.valueType !== undefined) return schemaKeys(def.valueType, `${prefix}<name>.`)
  return []
}

describe('config: errors name the field, the value and the fix', () => {
  it('an invalid port, short and long form', () => {
    const problem = 'services.web.target: "/tcp/99999" is not a valid port (1-65535)'
    invalid({ services: { web: '/tcp/99999' } }, problem)
    invalid({ services: { web: { target: '/tcp/99999' } } }, problem)
    invalid(
      { services: { db: '/ip4/10.0.0.4/tcp/0' } },
      'services.db.target: "/ip4/10.0.0.4/tcp/0" is not a valid port (1-65535)',
    )
  })

  it('lists every problem at once', () => {
    invalid(
      { services: { web: '/udp/53', db: '/ip4/1.2.3.4/tcp/0' } },
      'services.web.target: "/udp/53" does not end in /tcp/<port>',
      'services.db.target: "/ip4/1.2.3.4/tcp/0" is not a valid port (1-65535)',
    )
  })

  it('unknown keys, top level and nested', () => {
    invalid({ bogus: 1 }, 'unknown key "bogus" (see docs/config.md for the keys)')
    invalid({ bogus: 1, other: 2 }, 'unknown keys "bogus", "other" (see docs/config.md for the keys)')
    invalid({ api: { sock: 'x' } }, 'api: unknown key "sock" (see docs/config.md for the keys)')
    invalid({ limits: { timeout: 1 } }, 'limits: unknown key "timeout" (see docs/config.md for the keys)')
    invalid(
      { services: { web: { target: '/tcp/80', alow: ['*'] } } },
      'services.web: unknown key "alow" (see docs/config.md for the keys)',
    )
  })

  it('wrong types', () => {
    invalid(null, '(top level): expected object, got null')
    invalid([], '(top level): expected object, got []')
    invalid({ listen: '/ip4/1.2.3.4/tcp/1' }, 'listen: expected array, got "/ip4/1.2.3.4/tcp/1"')
    invalid({ services: { web: 8080 } }, 'services.web: expected object, got 8080')
    invalid({ services: { web: { target: '/tcp/80', kubo: 'yes' } } }, 'services.web.kubo: expected boolean, got "yes"')
    invalid({ limits: { maxStreams: 1.5 } }, 'limits.maxStreams: expected a whole number, got 1.5')
    invalid({ proxy: { listen: 3 } }, 'proxy.listen: expected string, got 3')
  })

  it('limits out of range', () => {
    invalid(
      { limits: { connectTimeoutMs: 5 } },
      'limits.connectTimeoutMs: 5 is too small: use a number of at least 100',
    )
    invalid(
      { limits: { dialTimeoutMs: 120001 } },
      'limits.dialTimeoutMs: 120001 is too large: use a number of at most 120000',
    )
  })

  it('bad multiaddrs in listen, announce and relays', () => {
    invalid(
      { listen: ['/ip4/1.2.3.4/tcp/x'] },
      'listen[0]: "/ip4/1.2.3.4/tcp/x" is not a valid multiaddr (Value must be an integer)',
    )
    invalid(
      { announce: ['nope'] },
      'announce[0]: "nope" is not a valid multiaddr (String multiaddr must start with "/")',
    )
    invalid({ relays: ['x'] }, 'relays[0]: "x" is not a valid multiaddr (String multiaddr must start with "/")')
    invalid(
      { relays: ['/ip4/198.51.100.7/tcp/4001'] },
      'relays[0]: "/ip4/198.51.100.7/tcp/4001" does not end with /p2p/<relay id>: copy the address from `warren relay status` on the relay',
    )
  })

  it('bad service names and aliases', () => {
    invalid({ services: { Web: '/tcp/80' } }, `services: key "Web" is not a valid service name: ${LABEL_RULE}`)
    invalid({ services: { 'web-': '/tcp/80' } }, `services: key "web-" is not a valid service name: ${LABEL_RULE}`)
    invalid(
      { services: { ['a'.repeat(64)]: '/tcp/80' } },
      `services: key "${'a'.repeat(64)}" is not a valid service name: ${LABEL_RULE}`,
    )
    invalid({ peers: { Bad_alias: ID } }, `peers: key "Bad_alias" is not a valid alias: ${LABEL_RULE}`)
    // an alias that looks like a node id would make names ambiguous
    invalid({ peers: { k51qzi5uqu5abc: ID } }, `peers: key "k51qzi5uqu5abc" is not a valid alias: ${LABEL_RULE}`)
  })

  it('bad node references in peers', () => {
    invalid(
      { peers: { laptop: 'nope' } },
      'peers.laptop: "nope" is not a node id: it does not start with 12D3KooW (base58) or k51qzi5uqu5 (base36)',
    )
    invalid(
      { peers: { laptop: 'warrenabc' } },
      'peers.laptop: "warrenabc" ticket has an impossible length: it looks truncated',
    )
    invalid(
      { peers: { laptop: ID.slice(0, -1) } },
      `peers.laptop: "${ID.slice(0, -1)}" is not a valid node id: it has 51 characters, a base58 node id has 52`,
    )
  })

  it('allow entries naming unknown aliases, or malformed', () => {
    invalid(
      { services: { web: { target: '/tcp/80', allow: ['laptop'] } } },
      'services.web.allow[0]: "laptop" is not an alias in peers (add "peers": { "laptop": "<node id>" } or use the node id)',
    )
    invalid(
      { peers: { laptop: ID }, services: { web: { target: '/tcp/80', allow: ['laptop', 'phone'] } } },
      'services.web.allow[1]: "phone" is not an alias in peers (add "peers": { "phone": "<node id>" } or use the node id)',
    )
    invalid(
      { services: { web: { target: '/tcp/80', allow: ['Bad Name'] } } },
      'services.web.allow[0]: "Bad Name" is not "*", a node id, or an alias from peers',
    )
  })

  it('rpc: unknown aliases in allow, malformed method names, limits out of range', () => {
    invalid(
      { rpc: { allow: ['laptop'] } },
      'rpc.allow[0]: "laptop" is not an alias in peers (add "peers": { "laptop": "<node id>" } or use the node id)',
    )
    invalid({ rpc: { public: ['has space'] } }, 'rpc.public[0]: "has space" is not a method name')
    invalid({ rpc: { timeoutMs: 5 } }, 'rpc.timeoutMs: 5 is too small: use a number of at least 100')
    invalid(
      { services: { web: { target: '/tcp/80', description: 'x'.repeat(201) } } },
      `services.web.description: "${'x'.repeat(201)}" is longer than 200 characters`,
    )
    const cfg = validateConfig({ peers: { laptop: ID }, rpc: { allow: ['laptop', '*'], public: ['_ping'] } })
    assert.deepEqual(cfg.rpc, {
      allow: ['laptop', '*'],
      public: ['_ping'],
      timeoutMs: 30_000,
      maxMessageBytes: 1024 * 1024,
    })
  })

  it('a known alias in allow is fine', () => {
    const cfg = validateConfig({ peers: { laptop: ID }, services: { web: { target: '/tcp/80', allow: ['laptop'] } } })
    assert.deepEqual(cfg.services.web?.allow, ['laptop'])
  })

  it('a source name prefixes the message', () => {
    assert.throws(() => validateConfig({ bogus: 1 }, '/tmp/x/config.json'), {
      message: '/tmp/x/config.json is invalid:\n  unknown key "bogus" (see docs/config.md for the keys)',
    })
  })
})

describe('config: loadConfig', () => {
  const dirs: string[] = []
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'warren-config-'))
    dirs.push(d)
    return d
  }

  it('reads and validates a file', async () => {
    const dir = await tmp()
    const path = join(dir, 'config.json')
    await writeFile(path, JSON.stringify({ services: { web: '/tcp/8080' } }))
    assert.equal((await loadConfig(path)).services.web?.target, '/tcp/8080')
  })

  it('a missing file says to run warren init', async () => {
    const path = join(await tmp(), 'config.json')
    await assert.rejects(loadConfig(path), {
      code: 'ERR_HOME_NOT_INITIALIZED',
      message: `no config at ${path}`,
      hint: 'Run `warren init` first (set WARREN_HOME to use another home).',
    })
  })

  it('invalid JSON names the file and the syntax problem', async () => {
    const path = join(await tmp(), 'config.json')
    await writeFile(path, '{ "listen": [], }')
    await assert.rejects(loadConfig(path), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'ERR_CONFIG_PARSE')
      assert.ok(err.message.startsWith(`${path} is not valid JSON: `), err.message)
      assert.equal(err.hint, 'Fix the JSON syntax (no comments or trailing commas).')
      return true
    })
  })

  it('an invalid file names the file and the field', async () => {
    const path = join(await tmp(), 'config.json')
    await writeFile(path, JSON.stringify({ services: { web: '/tcp/99999' } }))
    await assert.rejects(loadConfig(path), {
      code: 'ERR_CONFIG_INVALID',
      message: `${path} is invalid:\n  services.web.target: "/tcp/99999" is not a valid port (1-65535)`,
    })
  })

  it('multiaddrs in the config parse with the multiaddr library', () => {
    for (const a of DEFAULTS.listen) assert.equal(multiaddr(a).toString(), a)
  })
})
