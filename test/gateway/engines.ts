/**
 * The access port's two HTTP engines, for suites that must behave the same on both: the fast path
 * (src/gateway/fast/) and the full path (Node's HTTP server, pooled service streams). A suite registers its
 * describe() once per engine and starts its client node with `gatewayFastPath: FAST_PATH[engine]`.
 */
export type Engine = 'fast' | 'full'

export const ENGINES: readonly Engine[] = ['fast', 'full']

/** The start option `gatewayFastPath` for each engine. */
export const FAST_PATH: Record<Engine, boolean> = { fast: true, full: false }

/** Registers `suite` once per engine, its name suffixed with the engine's. */
export function forEachEngine(suite: (engine: Engine, label: string) => void): void {
  for (const engine of ENGINES) suite(engine, `(${engine} path)`)
}
