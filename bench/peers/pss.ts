/** Memory of benchmark processes: PSS (proportional set size) of a process and all its descendants, from /proc. */
import { readdirSync, readFileSync } from 'node:fs'

/** `pids` and every process descended from them, found by scanning /proc for parent ids. */
export function processTree(pids: number[]): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = children.get(ppid) ?? []
      list.push(Number(entry))
      children.set(ppid, list)
    } catch {
      // the process ended while the scan ran
    }
  }
  const all = new Set<number>()
  const visit = (pid: number): void => {
    if (all.has(pid)) return
    all.add(pid)
    for (const c of children.get(pid) ?? []) visit(c)
  }
  for (const p of pids) visit(p)
  return [...all]
}

/** PSS of one process in KiB (`Pss:` of /proc/<pid>/smaps_rollup); 0 when it is gone. */
export function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))
    return m === null ? 0 : Number(m[1])
  } catch {
    return 0
  }
}

/** PSS in KiB of the processes `pids` and their descendants, together. */
export function treePssKiB(pids: number[]): number {
  return processTree(pids).reduce((sum, pid) => sum + pssKiB(pid), 0)
}
