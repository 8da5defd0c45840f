/**
 * The Yamux frames a parked relay connection reads and writes itself (src/relay/server/yamux-frames.ts), against
 * the frames @chainsafe/libp2p-yamux itself encodes and decodes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
// the package exports neither file: read by path, the installed version's own encoder and decoder
import { decodeHeader } from '../../node_modules/@chainsafe/libp2p-yamux/dist/src/decode.js'
import { encodeHeader } from '../../node_modules/@chainsafe/libp2p-yamux/dist/src/encode.js'
import {
  DATA,
  GO_AWAY,
  PING,
  pingAck,
  pingFrame,
  scanFrames,
  WINDOW_UPDATE,
} from '../../src/relay/server/yamux-frames.ts'

describe('Yamux frames of a parked connection', () => {
  it('a PING and its ACK are the frames Yamux itself writes, and read back as Yamux reads them', () => {
    for (const value of [0, 1, 0x7000_0000, 0xffff_ffff]) {
      assert.deepEqual(
        Buffer.from(pingFrame(value)),
        Buffer.from(encodeHeader({ type: PING, flag: 1, streamID: 0, length: value })),
      )
      assert.deepEqual(decodeHeader(pingAck(value)), { type: PING, flag: 2, streamID: 0, length: value })
    }
  })

  it('reads the heads of a message of several frames, data frames with their bodies', () => {
    const msg = Buffer.concat([
      encodeHeader({ type: PING, flag: 1, streamID: 0, length: 9 }),
      encodeHeader({ type: DATA, flag: 0, streamID: 3, length: 5 }),
      Buffer.from('hello'),
      encodeHeader({ type: WINDOW_UPDATE, flag: 1, streamID: 5, length: 0 }),
      encodeHeader({ type: GO_AWAY, flag: 0, streamID: 0, length: 0 }),
    ])
    assert.deepEqual(scanFrames(msg), [
      { type: PING, syn: true, ack: false, streamID: 0, value: 9 },
      { type: DATA, syn: false, ack: false, streamID: 3, value: 5 },
      { type: WINDOW_UPDATE, syn: true, ack: false, streamID: 5, value: 0 },
      { type: GO_AWAY, syn: false, ack: false, streamID: 0, value: 0 },
    ])
  })

  it('a message that is not whole frames of version 0 is none of its own (undefined)', () => {
    const ping = Buffer.from(pingFrame(7))
    assert.equal(scanFrames(ping.subarray(0, 11)), undefined, 'a cut head')
    const v1 = Buffer.from(ping)
    v1[0] = 1
    assert.equal(scanFrames(v1), undefined, 'version 1')
    const data = Buffer.concat([encodeHeader({ type: DATA, flag: 0, streamID: 1, length: 10 }), Buffer.alloc(4)])
    assert.equal(scanFrames(data), undefined, 'a data frame shorter than its length')
    assert.deepEqual(scanFrames(new Uint8Array(0)), [], 'an empty message has no frames')
  })
})
