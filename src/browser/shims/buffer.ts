/**
 * The few `Buffer` calls of browser-bundled Warren modules (`concat`, `from(bytes)`, `from(text, 'utf8')`,
 * `equals`, `byteLength`), on Uint8Array. scripts/build-browser.ts injects it as the global `Buffer` of the bundle.
 */
class BrowserBuffer extends Uint8Array {
  static concat(parts: readonly Uint8Array[]): BrowserBuffer {
    const out = new BrowserBuffer(parts.reduce((n, p) => n + p.byteLength, 0))
    let off = 0
    for (const p of parts) {
      out.set(p, off)
      off += p.byteLength
    }
    return out
  }

  static override from(value: unknown): BrowserBuffer {
    if (typeof value === 'string') return BrowserBuffer.#of(new TextEncoder().encode(value))
    if (value instanceof Uint8Array) return BrowserBuffer.#of(value)
    throw new TypeError('Buffer.from in the browser bundle takes a string or a Uint8Array')
  }

  static byteLength(text: string): number {
    return new TextEncoder().encode(text).byteLength
  }

  static #of(bytes: Uint8Array): BrowserBuffer {
    const out = new BrowserBuffer(bytes.byteLength)
    out.set(bytes)
    return out
  }

  equals(other: Uint8Array): boolean {
    if (other.byteLength !== this.byteLength) return false
    for (let i = 0; i < this.byteLength; i++) if (this[i] !== other[i]) return false
    return true
  }
}

export { BrowserBuffer as Buffer }
