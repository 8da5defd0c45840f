/**
 * The published package works: `npm pack` builds dist/ (prepare), the tarball holds bin/, dist/, docs/ and
 * README.md but no tests or sources, and `npm install -g` of it gives a `warren` that runs init and id.
 *
 * The pack runs in a copy of the checkout so that rebuilding dist/ never disturbs other tests.
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const repo = fileURLToPath(new URL('../../', import.meta.url))
const MINUTE = 60_000

let work: string
let tarball: string
let prefix: string
/** PATH with the pinned Node first, as `npm test` has it. */
let PATH: string

async function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  return run(cmd, args, {
    cwd: opts.cwd ?? work,
    env: { ...process.env, PATH, ...opts.env },
    timeout: opts.timeout ?? 2 * MINUTE,
    maxBuffer: 16 * 1024 * 1024,
  })
}

describe('npm package', { timeout: 6 * MINUTE }, () => {
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'warren-pack-'))
    PATH = [dirname(process.execPath), join(repo, 'node_modules', '.bin'), process.env.PATH ?? ''].join(delimiter)
    const src = join(work, 'src-copy')
    await mkdir(src)
    for (const f of [
      'package.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'README.md',
      'src',
      'bin',
      'docs',
      'scripts',
    ]) {
      await cp(join(repo, f), join(src, f), { recursive: true })
    }
    await symlink(join(repo, 'node_modules'), join(src, 'node_modules'), 'dir')
    const { stdout } = await sh('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: src,
      timeout: 3 * MINUTE,
    })
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[]
    tarball = join(work, info!.filename)
    prefix = join(work, 'prefix')
  })

  after(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it('the tarball holds bin, dist, docs and README, and no tests or sources', async () => {
    const list = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((p) => p.replace(/^package\//, ''))
    for (const f of [
      'package.json',
      'README.md',
      'bin/warren.js',
      'dist/cli/main.js',
      'dist/daemon.cjs',
      'dist/errors.js',
      'docs/errors.md',
    ]) {
      assert.ok(list.includes(f), `${f} is in the tarball`)
    }
    const stray = list.filter((p) => /^(test|src|bench|scripts|\.ci|node_modules)\//.test(p) || p.endsWith('.test.js'))
    assert.deepEqual(stray, [])
    assert.ok(!list.some((p) => p.endsWith('.ts') && !p.endsWith('.d.ts')), 'no TypeScript sources')
  })

  it('installs globally from the tarball and runs --help, init and id', { timeout: 4 * MINUTE }, async () => {
    await sh('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      timeout: 3 * MINUTE,
    })
    const warren = join(prefix, 'bin', 'warren')
    assert.ok((await stat(warren)).isFile())
    const installed = join(prefix, 'lib', 'node_modules', 'warren')
    assert.ok(!(await readdir(installed)).includes('src'), 'the installed package has no src/, so it runs dist/')

    const help = await sh(warren, ['--help'])
    assert.match(help.stdout, /init/)
    assert.match(help.stdout, /forward/)

    const home = join(work, 'home')
    const env = { WARREN_HOME: home }
    await sh(warren, ['init', '--listen', '/ip4/127.0.0.1/tcp/0'], { env })
    assert.equal((await stat(join(home, 'key'))).mode & 0o777, 0o600)
    JSON.parse(await readFile(join(home, 'config.json'), 'utf8'))

    const id = await sh(warren, ['id'], { env })
    assert.match(id.stdout, /12D3KooW[1-9A-HJ-NP-Za-km-z]{44}/)
    assert.match(id.stdout, /k51qzi5uqu5[a-z0-9]{51}/)
    assert.match(id.stdout, /warren[a-z2-7]{20,}/)

    const json = JSON.parse((await sh(warren, ['id', '--json'], { env })).stdout) as { id: string; idBase36: string }
    assert.ok(id.stdout.includes(json.id))
    assert.ok(id.stdout.includes(json.idBase36))

    await assert.rejects(sh(warren, ['init'], { env }), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 3, 'ERR_HOME_EXISTS exits 3')
      assert.ok(
        (err.stderr ?? '').startsWith(`warren: ${home} already has a key and config.json\nhint: `),
        String(err.stderr),
      )
      return true
    })
  })
})

/** A Node older than 22 on the machine's PATH, if there is one (Debian's system node is v20 here). */
function oldNode(): string | undefined {
  try {
    const path = execFileSync('sh', ['-c', 'command -v node'], {
      encoding: 'utf8',
      env: {
        PATH: (process.env.PATH ?? '')
          .split(delimiter)
          .filter((p) => !p.includes('node_modules'))
          .join(delimiter),
      },
    }).trim()
    const major = Number(execFileSync(path, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }))
    return major < 22 ? path : undefined
  } catch {
    return undefined
  }
}

describe('bin/warren.js on an old Node', () => {
  const old = oldNode()
  it('says which Node it needs and exits 1', { skip: old === undefined && 'no Node < 22 on PATH' }, () => {
    assert.throws(
      () => execFileSync(old!, [join(repo, 'bin', 'warren.js'), '--help'], { encoding: 'utf8', stdio: 'pipe' }),
      (err: { status?: number; stderr?: string }) => {
        assert.equal(err.status, 1)
        assert.match(err.stderr ?? '', /^warren: Node\.js 22 or newer is required, but this is Node\.js \d+\.\d+\.\d+ /)
        return true
      },
    )
  })
})
