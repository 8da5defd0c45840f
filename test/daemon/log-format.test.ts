/** `warren up --log-format json`: one JSON object per line, control characters escaped; a bad format is refused. */
import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import { escapeControl, formatJsonLogLine, formatLogLine } from '../../src/log.ts'
import { runCli } from '../support/cli.ts'
import { makeHome, removeHome, TestDaemon } from '../support/daemon.ts'

let home: Awaited<ReturnType<typeof makeHome>>
before(async () => {
  home = await makeHome()
})
after(async () => {
  await removeHome(home)
})

it('a JSON line escapes control characters (C0, DEL, C1), line separators and bidi overrides', () => {
  const line = formatJsonLogLine('info', 'web\n\x1b[31mred\u2028\u202eevil\x7f\u009b2J', new Date(0))
  assert.equal(
    line,
    '{"time":"1970-01-01T00:00:00.000Z","level":"info","msg":"web\\n\\u001b[31mred\\u2028\\u202eevil\\u007f\\u009b2J"}',
  )
  assert.equal(JSON.parse(line).msg, 'web\n\x1b[31mred\u2028\u202eevil\x7f\u009b2J')
})

it('a line without a given time carries the time it was made, and text with nothing to escape comes out as it is', () => {
  for (const format of [formatLogLine, formatJsonLogLine]) {
    for (let i = 0; i < 3; i++) {
      const before = Date.now()
      const line = format('warn', 'plain text → ünïcode', undefined)
      const after = Date.now()
      const time = format === formatLogLine ? line.slice(0, 24) : (JSON.parse(line) as { time: string }).time
      assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      const at = Date.parse(time)
      assert.ok(at >= before && at <= after, `${time} is between ${before} and ${after}`)
      if (format === formatLogLine) assert.equal(line.slice(24), ' warn  plain text → ünïcode')
      else assert.equal((JSON.parse(line) as { msg: string }).msg, 'plain text → ünïcode')
    }
  }
  assert.equal(escapeControl('nothing to escape'), 'nothing to escape')
  assert.equal(escapeControl('a\tb\u0085c'), 'a\\tb\\x85c')
})

it('the daemon logs JSON lines to stderr and to daemon.log', async () => {
  const d = TestDaemon.spawn(home, ['--log-format', 'json'])
  try {
    await d.waitForLog(/"msg":"ready"\}$/m)
    const lines = d.stderr.trim().split('\n')
    for (const l of lines) {
      const o = JSON.parse(l) as { time: string; level: string; msg: string }
      assert.deepEqual(Object.keys(o), ['time', 'level', 'msg'])
    }
    const logs = await runCli(['logs', '-n', '1'], { home: home.dir })
    assert.equal(JSON.parse(logs.stdout).msg, 'ready')
  } finally {
    await d.stop()
  }
})

it('another --log-format is refused (exit 2)', async () => {
  const r = await runCli(['up', '--log-format', 'xml'], { home: home.dir })
  assert.equal(r.code, 2)
  assert.equal(
    r.stderr,
    'warren: --log-format "xml" is not a log format\n' +
      'hint: Use --log-format pretty (readable lines) or --log-format json (one JSON object per line).\n',
  )
})
