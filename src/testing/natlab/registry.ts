/**
 * Names and lifetimes of lab namespaces. Every lab gets a unique prefix `wl<pid base36>x<random>-` so that parallel
 * test processes never collide, and the pid in the name lets {@link cleanupLeftovers} remove what dead runs left behind.
 * Live labs are torn down by exact name on process exit and on SIGINT/SIGTERM/SIGHUP.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto'
import { runSyncOutput, runSyncQuiet } from './shell.ts'

/** Common start of every lab namespace name. */
export const LAB_NAME_ROOT = 'wl'

const PREFIX_RE = /^wl([0-9a-z]+)x([0-9a-z]+)-/

/** A fresh unique prefix for this process. */
export function newLabPrefix(): string {
  return `${LAB_NAME_ROOT}${process.pid.toString(36)}x${randomBytes(3).toString('hex')}-`
}

/** Names of all network namespaces on the machine. */
export function listNamespaces(): string[] {
  return runSyncOutput('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '')
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Deletes lab namespaces (those whose names start with `root`, default `wl`) whose creating process is gone.
 * Returns the names removed. Namespaces of live processes, including this one, are left alone.
 */
export function cleanupLeftovers(root = LAB_NAME_ROOT): string[] {
  const removed: string[] = []
  for (const ns of listNamespaces()) {
    if (!ns.startsWith(root)) continue
    const m = PREFIX_RE.exec(ns)
    if (m === null) continue
    const pid = Number.parseInt(m[1] ?? '', 36)
    if (pid === process.pid || pidAlive(pid)) continue
    if (runSyncQuiet('ip', ['netns', 'del', ns])) removed.push(ns)
  }
  return removed
}

/** Something to undo synchronously if the process dies with a lab still up. */
export interface LiveLab {
  namespaces(): readonly string[]
  killChildren(): void
}

const live = new Set<LiveLab>()
let hooked = false

function teardownAllSync(): void {
  for (const lab of live) {
    lab.killChildren()
    for (const ns of lab.namespaces()) runSyncQuiet('ip', ['netns', 'del', ns])
  }
  live.clear()
}

function onSignal(signal: NodeJS.Signals): void {
  teardownAllSync()
  unhook()
  process.kill(process.pid, signal)
}

function hook(): void {
  if (hooked) return
  hooked = true
  process.on('exit', teardownAllSync)
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, onSignal)
}

function unhook(): void {
  if (!hooked) return
  hooked = false
  process.off('exit', teardownAllSync)
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal)
}

/** Registers a live lab for exit/signal teardown. */
export function registerLab(lab: LiveLab): void {
  live.add(lab)
  hook()
}

/** Forgets a lab after it was torn down normally. */
export function unregisterLab(lab: LiveLab): void {
  live.delete(lab)
  if (live.size === 0) unhook()
}
