/**
 * `warren call`, `warren ls` and the local API's `<node>.<method>` between two real daemons (`warren up` child
 * processes), driven with the real CLI and with curl on the API socket, as users do. `a` offers three services and
 * names `b` in its peers; `b` may use two of them.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { runCli } from '../support/cli.ts'
import { type DaemonPair, startDaemonPair } from '../support/daemon-pair.ts'
import { nodeKey } from '../support/nodes.ts'

const run = promisify(execFile)

describe('warren call and warren ls between two daemons', () => {
  let pair: DaemonPair

  before(async () => {
    pair = await startDaemonPair({
      web: { target: '/tcp/8080', type: 'http', description: 'the family wiki' },
      ssh: { target: '/tcp/22' },
      db: { target: '/tcp/5432', allow: [(await nodeKey()).id] },
    })
  })
  after(async () => {
    await pair.close()
  })

  const cli = (...args: string[]) => runCli(args, { home: pair.bHome.dir })

  it('warren ls a: the two services b may use, as a table and as JSON', async () => {
    const table = await cli('ls', 'a')
    assert.equal(table.stderr, '')
    assert.equal(table.code, 0)
    assert.equal(table.stdout, 'SERVICE  TYPE  DESCRIPTION\nssh      tcp\nweb      http  the family wiki\n')
    const json = await cli('ls', 'a', '--json')
    assert.equal(json.code, 0)
    assert.deepEqual(JSON.parse(json.stdout), [
      { name: 'ssh', type: 'tcp' },
      { name: 'web', type: 'http', description: 'the family wiki' },
    ])
  })

  it('warren call a._ping prints the result; --json adds the round trip and the path', async () => {
    const r = await cli('call', 'a._ping')
    assert.equal(r.code, 0)
    const result = JSON.parse(r.stdout) as { pong: boolean; path: { kind: string; addr: string } }
    assert.equal(result.pong, true)
    assert.equal(result.path.kind, 'direct')
    const full = JSON.parse((await cli('call', 'a._info', '{}', '--json')).stdout) as {
      id: string
      rttMs: number
      path: { kind: string }
      result: { id: string; version: string }
    }
    assert.equal(full.id, pair.aId)
    assert.equal(full.result.id, pair.aId)
    assert.equal(full.path.kind, 'direct')
    assert.ok(full.rttMs > 0)
  })

  it('curl --unix-socket: POST /jsonrpc with "a._ping" is carried to a', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--unix-socket',
      pair.bHome.socket,
      'http://warren/jsonrpc',
      '-d',
      '{"jsonrpc":"2.0","id":1,"method":"a._ping","params":{}}',
    ])
    const answer = JSON.parse(stdout) as { id: number; result: { id: string; result: { pong: boolean } } }
    assert.equal(answer.id, 1)
    assert.equal(answer.result.id, pair.aId)
    assert.equal(answer.result.result.pong, true)
  })

  it('an unknown method: exit 5 with the error and a hint', async () => {
    const r = await cli('call', 'a.nope')
    assert.equal(r.code, 5)
    assert.equal(r.stdout, '')
    assert.equal(
      r.stderr,
      `warren: node ${pair.aId} has no method "nope"\nhint: \`warren call ${pair.aId}._info\` lists the methods it lets this node call.\n`,
    )
  })

  it('bad input: no method, params that are not JSON or not an object, an unknown alias', async () => {
    const noMethod = await cli('call', 'a')
    assert.equal(noMethod.code, 2)
    assert.equal(
      noMethod.stderr,
      'warren: "a" is not <node>.<method>\nhint: For example `warren call laptop._ping`, or `warren call laptop._info`.\n',
    )
    const notJson = await cli('call', 'a._ping', '{x')
    assert.equal(notJson.code, 2)
    assert.match(notJson.stderr, /^warren: params are not JSON: /)
    const scalar = await cli('call', 'a._ping', '3')
    assert.equal(scalar.code, 2)
    assert.match(scalar.stderr, /^warren: params must be a JSON object or array\n/)
    const unknown = await cli('ls', 'nobody')
    assert.equal(unknown.code, 4)
    assert.equal(
      unknown.stderr,
      'warren: "nobody" is not a node id, a ticket, or an alias in peers\nhint: Known aliases: a. Or use the node\'s id or ticket from `warren id` on that node.\n',
    )
  })

  it('bad params for a built-in: exit 5 with ERR_RPC_BAD_PARAMS in --json', async () => {
    const r = await cli('call', 'a._ping', '{"x":1}', '--json')
    assert.equal(r.code, 5)
    assert.equal((JSON.parse(r.stderr) as { error: { code: string } }).error.code, 'ERR_RPC_BAD_PARAMS')
  })
})
