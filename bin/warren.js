#!/usr/bin/env node
// The `warren` command. Installed from the package it runs the compiled JavaScript in dist/; in a source checkout
// (src/ present and a Node that strips types) it runs the TypeScript sources directly, so no build is needed.
import { existsSync } from 'node:fs'

const MIN_MAJOR = 22
const major = Number(process.versions.node.split('.')[0])
if (!(major >= MIN_MAJOR)) {
  process.stderr.write(
    `warren: Node.js ${MIN_MAJOR} or newer is required, but this is Node.js ${process.versions.node} (${process.execPath}).\n` +
      '  Install Node.js 22 or newer: from https://nodejs.org/en/download, with your package manager, or with nvm\n' +
      '  (`nvm install 22`); then run warren again (`node --version` shows which Node the shell finds first).\n',
  )
  process.exit(1)
}

const source = new URL('../src/cli/main.ts', import.meta.url)
const compiled = new URL('../dist/cli/main.js', import.meta.url)
const useSource = Boolean(process.features.typescript) && existsSync(source)

let cli
try {
  cli = await import(useSource ? source.href : compiled.href)
} catch (err) {
  if (!useSource && err?.code === 'ERR_MODULE_NOT_FOUND' && !existsSync(compiled)) {
    process.stderr.write('warren: dist/ is missing; run `npm run build` in the Warren checkout.\n')
    process.exit(70)
  }
  throw err
}

// exit explicitly: stdin (warren connect) or a lingering handle must not keep a finished command alive
const status = await cli.main(process.argv.slice(2))
process.exit(typeof status === 'number' ? status : 0)
