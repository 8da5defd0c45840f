/** CPU time of benchmark processes: user + system seconds of a process and all its descendants, from /proc. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { processTree } from './pss.ts'

/** Clock ticks per second of /proc's times (`getconf CLK_TCK`; 100 on Linux unless told otherwise). */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/**
 * User + system CPU seconds one process has used so far, with those of its children that ended and were waited for
 * (/proc/<pid>/stat: utime, stime, cutime, cstime; socat forks a child per connection); 0 when it is gone.
 */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS
  } catch {
    return 0
  }
}

/** CPU seconds of the processes `pids` and their descendants, together, ended descendants included. */
export function treeCpuSeconds(pids: number[]): number {
  return processTree(pids).reduce((sum, pid) => sum + cpuSeconds(pid), 0)
}
