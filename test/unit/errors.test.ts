import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { ERROR_CODES, type ErrorCode, isWarrenError, toWarrenError, WarrenError } from '../../src/errors.ts'

const codes = Object.keys(ERROR_CODES) as ErrorCode[]
const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8')

/** The section of docs/errors.md under `### ERR_X`, up to the next heading. */
function section(code: string): string | undefined {
  const start = doc.indexOf(`\n### ${code}\n`)
  if (start < 0) return undefined
  const rest = doc.slice(start + code.length + 6)
  const end = rest.search(/\n#{1,3} /)
  return end < 0 ? rest : rest.slice(0, end)
}

describe('error codes', () => {
  it('every code has a CLI exit status in 1..125 and a summary', () => {
    for (const code of codes) {
      const { exit, summary } = ERROR_CODES[code]
      assert.ok(Number.isInteger(exit) && exit >= 1 && exit <= 125, `${code}: exit ${exit}`)
      assert.ok(summary.length > 10 && summary.endsWith('.'), `${code}: summary`)
      assert.equal(new WarrenError(code, 'x').exitCode, exit)
    }
  })

  it('codes are named ERR_ and upper snake case', () => {
    for (const code of codes) assert.match(code, /^ERR_[A-Z0-9_]+$/)
  })

  it('docs/errors.md documents every code, with its exit status and what to do', () => {
    const missing = codes.filter((c) => section(c) === undefined)
    assert.deepEqual(
      missing,
      [],
      `undocumented codes: ${missing.join(', ')} — add a "### CODE" section to docs/errors.md`,
    )
    for (const code of codes) {
      const text = section(code)!
      assert.match(text, new RegExp(`Exit status: ${ERROR_CODES[code].exit}\\b`), `${code}: exit status in docs`)
      assert.match(text, /What to do:/, `${code}: "What to do:" in docs`)
    }
  })

  it('docs/errors.md documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^### (ERR_[A-Z0-9_]+)$/gm)].map((m) => m[1]!)
    assert.deepEqual(
      documented.filter((c) => !(c in ERROR_CODES)),
      [],
    )
    assert.equal(new Set(documented).size, documented.length, 'each code documented once')
  })
})

describe('WarrenError', () => {
  it('carries code, message, hint, details and cause', () => {
    const cause = new Error('ECONNREFUSED')
    const err = new WarrenError('ERR_TARGET_UNREACHABLE', 'cannot reach 127.0.0.1:8080', {
      hint: 'Start the service.',
      details: { target: '127.0.0.1:8080' },
      cause,
    })
    assert.ok(err instanceof Error)
    assert.equal(err.name, 'WarrenError')
    assert.equal(err.code, 'ERR_TARGET_UNREACHABLE')
    assert.equal(err.message, 'cannot reach 127.0.0.1:8080')
    assert.equal(err.hint, 'Start the service.')
    assert.deepEqual(err.details, { target: '127.0.0.1:8080' })
    assert.equal(err.cause, cause)
    assert.equal(err.exitCode, 5)
  })

  it('round-trips through JSON (as over the local API)', () => {
    const err = new WarrenError('ERR_NOT_AUTHORIZED', 'not allowed', { hint: 'Ask.', details: { peer: 'x' } })
    const json = JSON.parse(JSON.stringify(err))
    assert.deepEqual(json, { code: 'ERR_NOT_AUTHORIZED', message: 'not allowed', hint: 'Ask.', details: { peer: 'x' } })
    const back = WarrenError.fromJSON(json)
    assert.deepEqual(back.toJSON(), err.toJSON())
    assert.deepEqual(new WarrenError('ERR_USAGE', 'u').toJSON(), { code: 'ERR_USAGE', message: 'u' })
  })

  it('fromJSON turns unknown codes and junk into ERR_API', () => {
    assert.equal(WarrenError.fromJSON({ code: 'ERR_FROM_THE_FUTURE', message: 'm' }).code, 'ERR_API')
    const junk = WarrenError.fromJSON({ code: 7, message: null, hint: 3, details: 'x' })
    assert.deepEqual(junk.toJSON(), { code: 'ERR_API', message: 'unknown error' })
  })

  it('isWarrenError and toWarrenError', () => {
    const err = new WarrenError('ERR_TIMEOUT', 't')
    assert.ok(isWarrenError(err))
    assert.ok(isWarrenError(err, 'ERR_TIMEOUT'))
    assert.ok(!isWarrenError(err, 'ERR_USAGE'))
    assert.ok(!isWarrenError(new Error('x')))
    assert.equal(toWarrenError(err), err)
    const wrapped = toWarrenError(new TypeError('boom'))
    assert.equal(wrapped.code, 'ERR_INTERNAL')
    assert.equal(wrapped.message, 'boom')
    assert.equal(wrapped.exitCode, 70)
    assert.equal(toWarrenError('text').message, 'text')
  })
})
