/** Stops everything a test started, last first, whatever happened (failures while stopping are ignored). */
export function cleanup(): { add<T extends { stop(): unknown }>(x: T): T; run(): Promise<void> } {
  const items: Array<{ stop(): unknown }> = []
  return {
    add: (x) => {
      items.push(x)
      return x
    },
    run: async () => {
      await Promise.allSettled(items.reverse().map(async (x) => x.stop()))
    },
  }
}
