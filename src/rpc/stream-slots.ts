/**
 * The caller's share of a node's RPC streams: at most {@link RPC_STREAMS_PER_CONNECTION} open on one connection at
 * once, since the answering node resets any stream beyond its limit. A call past them waits its turn. A slot comes
 * free once its stream has closed both ways: the answering node counts a stream until it has closed its own side,
 * and a new stream opened before that could still be one too many.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { WarrenError } from '../errors.ts'
import { RPC_STREAMS_PER_CONNECTION } from './wire.ts'

/** How long a finished call's stream may wait for the other side's close before it is reset, ms. */
const CLOSE_WAIT_MS = 10_000

interface Slots {
  open: number
  waiting: (() => void)[]
}

const byConnection = new WeakMap<Connection, Slots>()

function waitTurn(slots: Slots, conn: Connection, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      const i = slots.waiting.indexOf(wake)
      if (i >= 0) slots.waiting.splice(i, 1)
      reject(
        new WarrenError(
          'ERR_TIMEOUT',
          `no RPC stream to node ${conn.remotePeer} came free in time: ${slots.open} calls to it were under way`,
          {
            hint: `A node answers ${RPC_STREAMS_PER_CONNECTION} calls from one node at once; the others wait their turn.`,
            cause: signal.reason,
          },
        ),
      )
    }
    const wake = (): void => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }
    if (signal.aborted) return onAbort()
    slots.waiting.push(wake)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** Waits for a free RPC stream on `conn` (rejecting with ERR_TIMEOUT when `signal` aborts first); returns its release. */
export async function takeSlot(conn: Connection, signal: AbortSignal): Promise<() => void> {
  let slots = byConnection.get(conn)
  if (slots === undefined) {
    slots = { open: 0, waiting: [] }
    byConnection.set(conn, slots)
  }
  while (slots.open >= RPC_STREAMS_PER_CONNECTION) await waitTurn(slots, conn, signal)
  slots.open++
  const taken = slots
  let released = false
  return () => {
    if (released) return
    released = true
    taken.open--
    taken.waiting.shift()?.()
  }
}

/** Calls `release` once `stream` has closed both ways; resets a stream whose other side does not close in time. */
export function releaseWhenClosed(stream: Stream, release: () => void): void {
  if (stream.status !== 'open' && stream.status !== 'closing') {
    release()
    return
  }
  const timer = setTimeout(() => {
    stream.abort(new Error('the other side did not close the RPC stream'))
    release()
  }, CLOSE_WAIT_MS)
  // a number in browsers, which have no unref
  ;(timer as { unref?: () => void }).unref?.()
  stream.addEventListener(
    'close',
    () => {
      clearTimeout(timer)
      release()
    },
    { once: true },
  )
}
