/** Every benchmark script answers `--help` with its usage and exit status 0, without running anything. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { headerText } from '../../bench/help.ts'

const run = promisify(execFile)
const BENCH = fileURLToPath(new URL('../../bench/', import.meta.url))
/** The scripts a user runs (the others are children and libraries of these). */
const SCRIPTS = [
  'run',
  'peers',
  'http',
  'discovery',
  'relay',
  'relay-heap',
  'relay-floor-mem',
  'browser',
  'transparent',
  'udx',
  'profile',
  'setup-path',
  'setup-held',
  'setup-pause',
  'heap-retained',
  'encrypters',
]

test('the benchmark scripts listed here exist', () => {
  const files = new Set(readdirSync(BENCH))
  for (const s of SCRIPTS) assert.ok(files.has(`${s}.ts`), `bench/${s}.ts`)
})

for (const script of SCRIPTS) {
  test(`bench/${script}.ts --help prints its usage and exits 0`, async () => {
    const { stdout } = await run(process.execPath, [`${BENCH}${script}.ts`, '--help'], { timeout: 60_000 })
    assert.match(stdout, /\S/)
    if (script !== 'peers')
      assert.equal(stdout.trim(), headerText(new URL(`../../bench/${script}.ts`, import.meta.url).href).trim())
  })
}

test('headerText is the leading doc comment without its markers', () => {
  const text = headerText(new URL('../../bench/help.ts', import.meta.url).href)
  assert.ok(text.startsWith('`--help` for the benchmark scripts'), text)
  assert.doesNotMatch(text, /^ \*/m)
})

test('bench/peers.ts refuses a peer or workload it does not know, naming the known ones, exit 2', async () => {
  const peers = 'tcp, socat, ssh, libp2p, holesail, iroh, warren, floor'
  for (const [args, message] of [
    [['--peers', 'ssh,flor'], `--peers: unknown flor (known: ${peers})\n`],
    [['--workloads', 'http,htp'], '--workloads: unknown htp (known: bulk, setup, cold, http, memory, idle)\n'],
  ] as const) {
    const r = await run(process.execPath, [`${BENCH}peers.ts`, ...args], { timeout: 60_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    )
    assert.equal(r.code, 2)
    assert.equal(r.stderr, message)
  }
})
