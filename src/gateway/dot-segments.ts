/**
 * RFC 3986 §5.2.4 remove_dot_segments for gateway paths: `.` and `..` segments, written plainly or
 * percent-encoded (`%2e`, `%2E`, `.%2e` …), are resolved before a request goes to a service, so a service never
 * sees them and `..` never climbs above the path's root (for the path gateway: above `/http/<node>/<service>/`).
 *
 * @example
 * ```ts
 * removeDotSegments('/a/b/../c/./d')  // '/a/c/d'
 * removeDotSegments('/../../etc')     // '/etc'
 * removeDotSegments('/a/%2e%2e/b')    // '/b'
 * ```
 */

const DOT = /^(?:\.|%2e)$/i
const DOTDOT = /^(?:\.|%2e){2}$/i

/** Resolves the dot segments of an absolute path (starting with `/`); the query, if any, is left as it is. */
export function removeDotSegments(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?')
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q)
  const query = q < 0 ? '' : pathAndQuery.slice(q)
  if (!path.includes('.') && !/%2e/i.test(path)) return pathAndQuery
  const segs = path.split('/').slice(1) // path starts with '/'
  const out: string[] = []
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!
    const last = i === segs.length - 1
    if (DOT.test(s)) {
      if (last) out.push('') // '/a/.' → '/a/'
    } else if (DOTDOT.test(s)) {
      out.pop()
      if (last) out.push('') // '/a/b/..' → '/a/'
    } else out.push(s)
  }
  return `/${out.join('/')}${query}`
}
