/**
 * A small memo of parsed message heads keyed by their exact text, for the gateway's fast path (http1.ts): a client
 * sends the same request head again and again on a keep-alive connection, and a service answers with the same
 * response head (until its Date moves on), so a head seen before is not split, matched and parsed again. The same
 * text always parses to the same head, so a hit is exactly what a parse would give; the values are shared, so
 * http1.ts freezes them.
 *
 * Bounded: at most `maxEntries` heads of at most `maxKeyLength` characters each; the oldest entry goes first.
 * V8 seeds its string hashes per process, so keys a client chooses cannot be made to collide on purpose.
 *
 * @example
 * ```ts
 * const memo = new HeadMemo<RequestHead>(64, 1024)
 * const head = memo.get(text) ?? memo.put(text, parse(text))
 * ```
 */
export class HeadMemo<T> {
  readonly #map = new Map<string, T>()
  readonly #maxEntries: number
  readonly #maxKeyLength: number

  constructor(maxEntries: number, maxKeyLength: number) {
    this.#maxEntries = maxEntries
    this.#maxKeyLength = maxKeyLength
  }

  get(text: string): T | undefined {
    return this.#map.get(text)
  }

  /** Remembers `value` for `text` (unless the text is too long) and returns it. */
  put(text: string, value: T): T {
    if (text.length > this.#maxKeyLength) return value
    if (this.#map.size >= this.#maxEntries) this.#map.delete(this.#map.keys().next().value as string)
    this.#map.set(text, value)
    return value
  }

  get size(): number {
    return this.#map.size
  }
}
