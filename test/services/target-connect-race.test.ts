/**
 * A stream that is reset while the serving node is still connecting to the service's target: once the connect
 * completes, the target gets an RST at once, and the serving node keeps no connection that nobody would ever end.
 *
 * The target connect is held up by nftables dropping its SYNs, inside a network namespace of the test's own. The client
 * sends 5 bytes and resets its connection once the rule has counted the serving node's first SYN, so the reset always
 * comes while the connect is under way, however slow the machine; the rule stays for 1.2 s more (the retransmission a
 * second in is dropped too) and the one three seconds in gets through. Real daemons (`bin/warren.js up --detach`), a
 * real forward and real sockets.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { labSupport } from '../../src/testing/natlab/index.ts'
import { NODE, WARREN_BIN } from '../support/cli.ts'
import { eventually } from '../support/eventually.ts'

const support = await labSupport()
const skip = support.ok ? false : `network namespaces unavailable: ${support.reason}`

const TARGET_PORT = 7070
const FORWARD = '127.0.0.1:9191'
const TRIES = 3

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((res) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 60_000, env }, (err, stdout, stderr) =>
      res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr }),
    )
  })
}

/** The target: logs each connection's events, one line each, by the client's port. */
const TARGET = `
const { createServer } = require('node:net')
const s = createServer((c) => {
  const p = c.remotePort
  console.log('accepted ' + p)
  c.on('data', (d) => console.log('data ' + p + ' ' + d.length))
  c.on('end', () => console.log('end ' + p))
  c.on('error', (e) => console.log('error ' + p + ' ' + e.code))
  c.on('close', () => console.log('close ' + p))
})
s.listen(${TARGET_PORT}, '127.0.0.1', () => console.log('listening'))
`

/** A client of the forward: 5 bytes, then a reset once the file named by its argument exists (polled for 10 s at most). */
const CLIENT = `
const { existsSync } = require('node:fs')
const c = require('node:net').connect({ host: '127.0.0.1', port: ${FORWARD.split(':')[1]} }, () => {
  c.write('hello')
  let polls = 0
  const t = setInterval(() => {
    if (existsSync(process.argv[2]) || ++polls > 1000) {
      clearInterval(t)
      c.resetAndDestroy()
    }
  }, 10)
})
c.on('error', () => {})
`

/** A client that sends 5 bytes and ends cleanly once they are echoed back or the target closes. */
const WARM = `
const c = require('node:net').connect({ host: '127.0.0.1', port: ${FORWARD.split(':')[1]} }, () => c.end('hello'))
c.on('data', () => {})
c.on('error', (e) => { console.error(e.message); process.exitCode = 1 })
`

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('a stream reset while its target connect is under way', { skip }, () => {
  it('the target gets an RST once connected, and no connection to it stays open', async () => {
    const ns = `wtc-${process.pid}-${randomBytes(3).toString('hex')}`
    const dir = await mkdtemp(join(tmpdir(), 'warren-connect-race-'))
    const env: NodeJS.ProcessEnv = { ...process.env, WARREN_LOG: 'info' }
    delete env.WARREN_HOME
    const inNs = (args: string[], home?: string): Promise<Run> =>
      run('ip', ['netns', 'exec', ns, ...args], home === undefined ? env : { ...env, WARREN_HOME: join(dir, home) })
    const warren = async (home: string, args: string[]): Promise<string> => {
      const r = await inNs([NODE, WARREN_BIN, ...args], home)
      assert.equal(r.code, 0, `warren ${args.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    try {
      assert.equal((await run('ip', ['netns', 'add', ns])).code, 0)
      assert.equal((await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])).code, 0)
      assert.equal((await inNs(['nft', 'add table inet race'])).code, 0)
      assert.equal((await inNs(['nft', 'add chain inet race in { type filter hook input priority 0; }'])).code, 0)
      await writeFile(join(dir, 'target.cjs'), TARGET)
      await writeFile(join(dir, 'client.cjs'), CLIENT)
      const targetLog = join(dir, 'target.log')
      // runs until the namespace's processes are killed below
      void run('sh', ['-c', `ip netns exec ${ns} ${NODE} ${join(dir, 'target.cjs')} > ${targetLog} 2>&1`])
      await eventually(async () => (await readFile(targetLog, 'utf8').catch(() => '')).includes('listening'), {
        message: 'the target did not start',
      })

      for (const h of ['a', 'b']) await warren(h, ['init', '--listen', '/ip4/127.0.0.1/tcp/0'])
      for (const h of ['a', 'b']) await warren(h, ['up', '--detach'])
      const bId = (JSON.parse(await warren('b', ['id', '--json'])) as { id: string }).id
      const aTicket = (JSON.parse(await warren('a', ['id', '--json'])) as { ticket: string }).ticket
      await warren('a', ['expose', 'svc', `/tcp/${TARGET_PORT}`, '--allow', bId])
      await warren('b', ['forward', `${aTicket}/svc`, '--listen', FORWARD, '--no-check'])
      const accepted = async (): Promise<number> =>
        (await readFile(targetLog, 'utf8')).split('\n').filter((l) => l.startsWith('accepted')).length
      const droppedSyns = async (): Promise<number> => {
        const r = await inNs(['nft', 'list chain inet race in'])
        return Number(/counter packets (\d+)/.exec(r.stdout)?.[1] ?? 0)
      }
      // one clean connection first, so the races below start on a connection between the nodes that is up
      await writeFile(join(dir, 'warm.cjs'), WARM)
      const warm = await inNs([NODE, join(dir, 'warm.cjs')])
      assert.equal(warm.code, 0, warm.stderr)
      await eventually(async () => (await accepted()) === 1, {
        message: 'the clean connection did not reach the target',
      })
      const before = await accepted()

      for (let i = 0; i < TRIES; i++) {
        const rule = 'add rule inet race in tcp dport 7070 tcp flags syn counter drop'
        assert.equal((await inNs(['nft', rule])).code, 0)
        const go = join(dir, `go-${i}`)
        const client = inNs([NODE, join(dir, 'client.cjs'), go])
        await eventually(async () => (await droppedSyns()) > 0, { message: `try ${i}: no SYN to the target dropped` })
        await writeFile(go, '')
        assert.equal((await client).code, 0)
        await sleep(1_200)
        assert.equal((await inNs(['nft', 'flush chain inet race in'])).code, 0)
        await eventually(async () => (await accepted()) === before + i + 1, {
          message: `try ${i}: the target connect did not complete`,
        })
      }

      const lines = async (): Promise<string[]> => (await readFile(targetLog, 'utf8')).split('\n')
      // every connection of the clients' was accepted late and reset at once: no data reached it, no clean end
      await eventually(
        async () => {
          const l = await lines()
          return (
            l.filter((x) => x.startsWith('accepted')).length === before + TRIES &&
            l.filter((x) => x.startsWith('close')).length >= before + TRIES
          )
        },
        { timeoutMs: 10_000, message: `${TRIES} target connections accepted and closed` },
      )
      const log = await lines()
      const raced = log.filter((x) => /^accepted/.test(x)).slice(before)
      assert.equal(raced.length, TRIES, log.join('\n'))
      assert.equal(log.filter((x) => /^error \S+ ECONNRESET$/.test(x)).length, TRIES, log.join('\n'))
      assert.equal(
        log.filter((x) => /^end /.test(x)).length,
        before,
        `no clean end for a reset stream: ${log.join('\n')}`,
      )
      const open = await inNs(['ss', '-Htn', 'state', 'established', `( sport = :${TARGET_PORT} )`])
      assert.equal(open.stdout.trim(), '', 'connections to the target still open')
      const daemonLog = await readFile(join(dir, 'a', 'daemon.log'), 'utf8')
      assert.equal(
        daemonLog.match(
          /incoming stream ended: \S+ → svc: the stream was (reset|aborted) before the connect to the target completed/g,
        )?.length,
        TRIES,
        daemonLog,
      )
    } finally {
      const pids = (await run('ip', ['netns', 'pids', ns])).stdout.split('\n').filter((l) => l.trim() !== '')
      for (const pid of pids) await run('kill', ['-9', pid])
      await run('ip', ['netns', 'del', ns])
      await rm(dir, { recursive: true, force: true })
    }
  })
})
