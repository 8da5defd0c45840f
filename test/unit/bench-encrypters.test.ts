/** bench/encrypters.ts refuses what it cannot run, with its exact words, before it starts anything. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type EncrypterRound, summary } from '../../bench/encrypters.ts'

const run = promisify(execFile)
const SCRIPT = fileURLToPath(new URL('../../bench/encrypters.ts', import.meta.url))

async function refused(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const err = await run(process.execPath, [SCRIPT, ...args], { timeout: 60_000 }).then(
    () => assert.fail(`encrypters ${args.join(' ')} ran`),
    (e: { code: number; stderr: string; stdout: string }) => e,
  )
  return { code: err.code, stderr: err.stderr, stdout: err.stdout }
}

test('a count that is not a whole number from 1 is refused with exit status 2', async () => {
  for (const args of [['--rounds', '0'], ['--bulk', 'x'], ['--exchanges', '1.5'], ['--connections=-3']]) {
    const r = await refused(args)
    assert.equal(r.code, 2, args.join(' '))
    assert.equal(r.stderr, 'encrypters: --rounds, --bulk, --exchanges and --connections take whole numbers from 1\n')
    assert.equal(r.stdout, '')
  }
})

test('an unknown variant is refused with exit status 2 and the list of variants', async () => {
  const r = await refused(['--variants', 'noise,wireguard'])
  assert.equal(r.code, 2)
  assert.equal(
    r.stderr,
    'encrypters: unknown variant wireguard; the variants are noise, tls, stock-noise, stock-tls, quic\n',
  )
})

test('an unknown option is refused with exit status 2', async () => {
  const r = await refused(['--bluk', '3'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /^encrypters: Unknown option '--bluk'/)
})

test('the summary gives each figure as the median of the rounds with their range', () => {
  const round = (n: number, up: number): EncrypterRound => ({
    variant: 'noise',
    round: n,
    upMiBps: up,
    downMiBps: 300,
    bulkCpuSPerGiB: { dialer: 2.5, listener: 2.6 },
    exchangesPerS: 1000 * n,
    cpuUsPerExchange: { dialer: 3.5, listener: 3.6 },
    connectP50Ms: 8,
    connectP99Ms: 9,
    cpuUsPerConnection: { dialer: 6000, listener: 5000 },
    pausedReader: n === 2 ? { gotMiB: 4, ended: 'reset' } : { gotMiB: 64, ended: 'every byte' },
    loadAverage: 1,
  })
  const s = summary([round(1, 320), round(2, 300), round(3, 340)])
  assert.deepEqual(Object.keys(s), ['noise'])
  assert.equal(s.noise!['bulk up MiB/s'], '320 [300-340]')
  assert.equal(s.noise!['round trips/s'], '2000 [1000-3000]')
  assert.equal(s.noise!['CPU µs/connection listener'], '5000 [5000-5000]')
  assert.equal(s.noise!['paused reader, 64 MiB'], '64 MiB, every byte; 4 MiB, reset')
})
