/**
 * How deeply a parsed JSON value nests. `JSON.parse` builds values of any depth, but `JSON.stringify`, string
 * conversion and structured clones recurse, and throw a RangeError (the call stack is exhausted) a few thousand
 * levels down: a 1 MiB message holds half a million. So every JSON value a node takes from outside (an RPC request
 * or answer, a call on the local API) is refused past MAX_JSON_DEPTH levels, before anything else touches it.
 */

/** Arrays and objects inside each other that a message may hold, the outermost one counted. */
export const MAX_JSON_DEPTH = 128

/** Whether `value` has arrays or objects nested more than `max` levels deep. Iterative: it cannot overflow itself. */
export function nestedDeeperThan(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 1]]
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, depth] = top
    if (v === null || typeof v !== 'object') continue
    if (depth > max) return true
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
    }
  }
  return false
}
