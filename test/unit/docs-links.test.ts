/**
 * The links between the repository's documents: every relative link names a file that exists, and every `#anchor`
 * names a heading of the document it points into (GitHub's anchors: lower case, punctuation dropped, spaces as
 * hyphens, `-1`, `-2` … for repeated headings).
 */
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

const documents = [
  'README.md',
  'UPSTREAM.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

/** Text outside fenced code blocks, where a `#` line is a heading and a `](…)` a link. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '')
}

/** GitHub's anchor for a heading's text. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const m of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const base = slug(m[1]!)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

function brokenLinks(doc: string): string[] {
  const text = readFileSync(join(root, doc), 'utf8')
  const broken: string[] = []
  for (const m of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
    const link = m[1]!
    if (/^[a-z]+:/i.test(link)) continue // https:, mailto: …
    const [path = '', anchor] = link.split('#', 2)
    const target = path === '' ? join(root, doc) : resolve(join(root, dirname(doc)), path)
    if (!existsSync(target)) {
      broken.push(`${link}: no such file`)
      continue
    }
    if (anchor !== undefined && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(anchor))
      broken.push(`${link}: no such heading`)
  }
  return broken
}

describe('links between the documents', () => {
  it('anchors follow GitHub: case, punctuation, spaces and repeated headings', () => {
    assert.equal(slug('`ERR_FILE_LIMIT`'), 'err_file_limit')
    assert.equal(slug('A new forwarded connection: one round trip'), 'a-new-forwarded-connection-one-round-trip')
    assert.equal(slug("Where a request's CPU goes"), 'where-a-requests-cpu-goes')
    assert.deepEqual([...anchorsOf('# Limits\n\n## Limits\n\n```\n# not a heading\n```\n')], ['limits', 'limits-1'])
  })

  for (const doc of documents) {
    it(`${doc}: every relative link and anchor resolves`, () => {
      assert.deepEqual(brokenLinks(doc), [])
    })
  }
})
