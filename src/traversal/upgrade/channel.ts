/**
 * The `/warren/punch/1.0.0` stream as a channel of length-prefixed punch messages (punch/messages.ts), bounded by the
 * upgrade's signal.
 *
 * @packageDocumentation
 */
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { decodePunchMessage, encodePunchMessage, MAX_PUNCH_MESSAGE, type PunchMessage } from '../punch/messages.ts'

export interface Channel {
  send(msg: PunchMessage): Promise<void>
  next(): Promise<PunchMessage>
}

export function channel(stream: Stream, signal: AbortSignal): Channel {
  const lp = lpStream(stream, { maxDataLength: MAX_PUNCH_MESSAGE })
  return {
    send: (msg) => lp.write(encodePunchMessage(msg), { signal }),
    next: async () => decodePunchMessage((await lp.read({ signal })).subarray()),
  }
}
