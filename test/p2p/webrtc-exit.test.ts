/**
 * libdatachannel (node-datachannel 0.33.4, under js-libp2p's WebRTC transport) can keep its threads after the last
 * peer connection closed: a test process whose node had served a Chromium peer did not exit, with stdout a pipe,
 * until `cleanup()` freed them (UPSTREAM.md). A Warren node releases the library once it stops
 * (src/p2p/webrtc/load.ts); here a process whose nodes used WebRTC and released it exits, with status 0.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, it } from 'node:test'

const FIXTURE = resolve('test/p2p/fixtures/webrtc-exit.ts')

/** Runs the fixture with stdout piped; resolves with its output and whether it exited within `ms` of `stopped`. */
function run(mode: 'release', ms: number): Promise<{ out: string; exited: boolean; code: number | null }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [FIXTURE, mode], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    let timer: NodeJS.Timeout | undefined
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('stopped\n') && timer === undefined) {
        timer = setTimeout(() => {
          child.kill('SIGKILL')
          done({ out, exited: false, code: null })
        }, ms)
      }
    })
    child.on('error', fail)
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ out, exited: true, code })
    })
  })
}

describe('a process that used WebRTC exits once its nodes stopped', { timeout: 90_000 }, () => {
  it('Warren: with the nodes released it exits with status 0', async () => {
    const r = await run('release', 10_000)
    assert.equal(r.out, 'tunnel /yamux/1.0.0\nstopped\n')
    assert.deepEqual({ exited: r.exited, code: r.code }, { exited: true, code: 0 })
  })
})
