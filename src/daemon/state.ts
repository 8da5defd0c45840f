/**
 * `state.json`: what the daemon keeps across restarts — services exposed and forwards added at runtime.
 * Written atomically (temp file + rename), so a crash leaves either the old or the new state, never half.
 */
import { rename, unlink, writeFile } from 'node:fs/promises'
import { z } from 'zod'
import { readJsonFile } from '../config/json-file.ts'
import { WarrenError } from '../errors.ts'

const stateSchema = z.object({
  version: z.literal(1),
  services: z
    .record(
      z.string(),
      z.object({ target: z.string(), allow: z.array(z.string()).optional(), kubo: z.boolean().default(false) }),
    )
    .default({}),
  forwards: z
    .array(
      z.object({
        node: z.string(),
        service: z.string(),
        listen: z.string(),
        addrs: z.array(z.string()).optional(),
        /** false: added with --no-check, so not checked when restored either. */
        check: z.boolean().optional(),
        /** true: added with --public, so a non-loopback listen address is restored too. */
        public: z.boolean().optional(),
      }),
    )
    .default([]),
  /** Addresses learned from tickets and --addr, by node id, so `warren forward <id>/…` keeps working. */
  learned: z.record(z.string(), z.array(z.string())).default({}),
})

export type DaemonState = z.output<typeof stateSchema>
export type SavedService = DaemonState['services'][string]
export type SavedForward = DaemonState['forwards'][number]

const REMEDY = (path: string): string =>
  `The daemon writes this file itself; delete ${path} to start without runtime services and forwards.`

export function emptyState(): DaemonState {
  return { version: 1, services: {}, forwards: [], learned: {} }
}

/** Reads state.json; a missing file is an empty state, a corrupt one an ERR_CONFIG_PARSE naming the file. */
export async function loadState(path: string): Promise<DaemonState> {
  const json = await readJsonFile(path, REMEDY(path))
  if (json === undefined) return emptyState()
  const parsed = stateSchema.safeParse(json)
  if (!parsed.success) {
    const first = parsed.error.issues[0]
    throw new WarrenError('ERR_CONFIG_INVALID', `${path} is invalid: ${first?.path.join('.')}: ${first?.message}`, {
      hint: REMEDY(path),
      details: { path },
    })
  }
  return parsed.data
}

let tmpCounter = 0

/** Writes state.json atomically with mode 0600. */
export async function saveState(path: string, state: DaemonState): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`
  try {
    await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 })
    await rename(tmp, path)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
}

/**
 * Serialises saves so concurrent API calls never interleave writes; each save writes the latest state.
 */
export class StateStore {
  readonly path: string
  state: DaemonState
  #chain: Promise<void> = Promise.resolve()

  constructor(path: string, state: DaemonState) {
    this.path = path
    this.state = state
  }

  static async open(path: string): Promise<StateStore> {
    return new StateStore(path, await loadState(path))
  }

  /** Applies `change` to the state and writes it; resolves once this change is on disk. */
  update(change: (s: DaemonState) => void): Promise<void> {
    change(this.state)
    const next = this.#chain.then(() => saveState(this.path, this.state))
    this.#chain = next.catch(() => {})
    return next
  }
}
