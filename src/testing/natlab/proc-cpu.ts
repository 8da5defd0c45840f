/**
 * CPU time of a process from `/proc/<pid>/stat` (user + system). Lab processes live in their own network namespaces
 * but share the PID namespace, so the driver reads them from outside without their help.
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises'

/** Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux the lab runs on). */
const TICKS_PER_SECOND = 100

/** CPU seconds `pid` has used so far; NaN when it is gone or the pid is undefined. */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (pid === undefined) return Number.NaN
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // fields after "(comm)": state is field 3, utime 14 and stime 15 (1-based)
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return Number.NaN
  }
}

/** CPU seconds of several named processes, read at (nearly) the same moment. */
export async function cpuSecondsOf(pids: Record<string, number | undefined>): Promise<Record<string, number>> {
  const entries = await Promise.all(Object.entries(pids).map(async ([name, pid]) => [name, await cpuSeconds(pid)]))
  return Object.fromEntries(entries) as Record<string, number>
}
