/**
 * glibc's `mallinfo2()` and `malloc_trim(0)` through koffi, for the memory probes preloaded into benchmark daemons
 * (bench/daemon-probe.ts, bench/relay-probe.ts). Undefined off glibc.
 */
import { createRequire } from 'node:module'

export interface MallInfo {
  /** Bytes glibc took with brk (main arena) plus the non-main arenas' heaps. */
  arena: number
  /** Bytes in mmapped chunks. */
  hblkhd: number
  /** Bytes in use. */
  uordblks: number
  /** Bytes free inside the arenas. */
  fordblks: number
  /** Bytes releasable at the top of the main heap. */
  keepcost: number
}

export const libc = ((): { info(): MallInfo; trim(): number } | undefined => {
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
    const lib = koffi.load('libc.so.6')
    const fields = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks']
    const struct = koffi.struct('mallinfo2', Object.fromEntries([...fields, 'keepcost'].map((f) => [f, 'size_t'])))
    const info = lib.func('mallinfo2', struct, []) as () => Record<string, number | bigint>
    const trim = lib.func('int malloc_trim(size_t pad)') as (pad: number) => number
    return {
      info: () => {
        const m = info()
        const n = (k: string): number => Number(m[k])
        return {
          arena: n('arena'),
          hblkhd: n('hblkhd'),
          uordblks: n('uordblks'),
          fordblks: n('fordblks'),
          keepcost: n('keepcost'),
        }
      },
      trim: () => trim(0),
    }
  } catch {
    return undefined
  }
})()
