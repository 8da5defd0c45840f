/**
 * A PCP client (RFC 6887) for one gateway: MAP requests for TCP and UDP ports, ANNOUNCE to read the server's epoch,
 * over one UDP socket bound to this host's address toward the gateway (PCP servers check that the client address in
 * the request is the packet's source). Requests are retransmitted at 250 ms, 500 ms, 1 s … until the caller's signal
 * ends (RFC 6887 §8.1.1 starts at 3 s; a probe that must finish within ~1.5 s needs shorter). Codec: pcp-codec.ts.
 *
 * @packageDocumentation
 */
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { WarrenError } from '../../errors.ts'
import {
  checkMapAnswer,
  decodeResponse,
  encodeAnnounceRequest,
  encodeMapRequest,
  OPCODE_ANNOUNCE,
  OPCODE_MAP,
  PCP_RESULTS,
  PCP_SERVER_PORT,
  type PcpMapRequest,
  type PcpResponse,
  PROTOCOL_NUMBER,
} from './pcp-codec.ts'
import type { MapGrant, MapperClient, MapRequest } from './types.ts'

/** Whether the server lost its state between two answers (RFC 6887 §8.5): its clock ran back or far from ours. */
export function epochReset(prev: { epoch: number; at: number }, epoch: number, at: number): boolean {
  if (epoch + 1 < prev.epoch) return true
  const client = (at - prev.at) / 1000
  const server = epoch - prev.epoch
  return client + 2 < server - server / 16 || server + 2 < client - client / 16
}

export class PcpClient implements MapperClient {
  readonly protocol = 'pcp' as const
  readonly #gateway: string
  readonly #local: string
  readonly #port: number
  #socket: Socket | undefined
  #bound: Promise<Socket> | undefined
  readonly #waiters = new Set<(res: PcpResponse | Error) => boolean>()
  /** The nonce per `transport/internalPort`, kept for renewals and the delete. */
  readonly #nonces = new Map<string, Uint8Array>()
  #epoch: { epoch: number; at: number } | undefined

  constructor(gateway: string, local: string, serverPort = PCP_SERVER_PORT) {
    this.#gateway = gateway
    this.#local = local
    this.#port = serverPort
  }

  #open(): Promise<Socket> {
    this.#bound ??= new Promise((resolve, reject) => {
      const s = createSocket('udp4')
      s.once('error', reject)
      s.on('message', (msg, rinfo) => {
        if (rinfo.address !== this.#gateway || rinfo.port !== this.#port) return
        let res: PcpResponse | Error
        try {
          res = decodeResponse(msg)
        } catch (err) {
          // a malformed answer fails the oldest request waiting
          res = err as Error
        }
        for (const w of this.#waiters) if (w(res)) break
      })
      s.bind(0, this.#local, () => {
        s.removeListener('error', reject)
        s.on('error', () => undefined)
        this.#socket = s
        resolve(s)
      })
    })
    return this.#bound
  }

  /** Sends `msg` with retransmissions until an answer `accept` takes arrives or `signal` ends. */
  async #ask(msg: Buffer, accept: (res: PcpResponse) => boolean, signal: AbortSignal): Promise<PcpResponse> {
    const socket = await this.#open()
    return new Promise((resolve, reject) => {
      let delay = 250
      let timer: NodeJS.Timeout | undefined
      const send = (): void => {
        socket.send(msg, this.#port, this.#gateway)
        timer = setTimeout(send, delay)
        delay = Math.min(delay * 2, 4000)
      }
      const done = (): void => {
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        signal.removeEventListener('abort', onAbort)
      }
      const waiter = (res: PcpResponse | Error): boolean => {
        if (res instanceof Error) {
          done()
          reject(res)
          return true
        }
        if (!accept(res)) return false
        done()
        resolve(res)
        return true
      }
      const onAbort = (): void => {
        done()
        reject(
          new WarrenError('ERR_PORT_MAPPING', `no PCP answer from ${this.#gateway}:${this.#port}`, {
            details: { protocol: 'pcp', reason: 'no answer' },
          }),
        )
      }
      if (signal.aborted) {
        onAbort()
        return
      }
      signal.addEventListener('abort', onAbort)
      this.#waiters.add(waiter)
      send()
    })
  }

  #noteEpoch(res: PcpResponse): boolean {
    const now = Date.now()
    const reset = this.#epoch !== undefined && epochReset(this.#epoch, res.epoch, now)
    this.#epoch = { epoch: res.epoch, at: now }
    return reset
  }

  async probe(signal: AbortSignal): Promise<void> {
    const res = await this.#ask(encodeAnnounceRequest(this.#local), (r) => r.opcode === OPCODE_ANNOUNCE, signal)
    // an ANNOUNCE answer with an error still proves a PCP server, except UNSUPP_VERSION
    if (res.result === 1) {
      throw new WarrenError('ERR_PORT_MAPPING', 'the gateway does not support PCP version 2', {
        details: { protocol: 'pcp', reason: 'unsupported' },
      })
    }
    // some servers (miniupnpd 2.3) put no epoch in ANNOUNCE answers: only MAP answers count then
    if (res.epoch !== 0) this.#noteEpoch(res)
  }

  #request(req: MapRequest, lifetimeS: number): PcpMapRequest {
    const key = `${req.transport}/${req.internalPort}`
    let nonce = this.#nonces.get(key)
    if (nonce === undefined) {
      nonce = new Uint8Array(randomBytes(12))
      this.#nonces.set(key, nonce)
    }
    return {
      nonce,
      transport: req.transport,
      internalPort: req.internalPort,
      externalPort: req.externalPort ?? req.internalPort,
      clientIp: this.#local,
      lifetimeS,
    }
  }

  async map(req: MapRequest, signal: AbortSignal): Promise<MapGrant> {
    const pcp = this.#request(req, req.lifetimeS)
    const res = await this.#ask(encodeMapRequest(pcp), (r) => isAnswerTo(pcp, r), signal)
    const m = checkMapAnswer(pcp, res)
    const reset = this.#noteEpoch(res)
    return { externalHost: m.externalIp, externalPort: m.externalPort, lifetimeS: res.lifetimeS, reset }
  }

  async unmap(req: MapRequest & { externalPort: number }, signal: AbortSignal): Promise<void> {
    const pcp = this.#request(req, 0)
    const res = await this.#ask(encodeMapRequest(pcp), (r) => isAnswerTo(pcp, r), signal)
    if (res.result !== 0) {
      throw new WarrenError(
        'ERR_PORT_MAPPING',
        `the gateway did not delete the PCP mapping: ${PCP_RESULTS[res.result]}`,
      )
    }
    this.#nonces.delete(`${req.transport}/${req.internalPort}`)
  }

  /** ANNOUNCE: a reset epoch means lost; a server that sends no epoch there cannot tell (undefined: renew to see). */
  async lost(_externalHost: string, signal: AbortSignal): Promise<boolean | undefined> {
    const res = await this.#ask(encodeAnnounceRequest(this.#local), (r) => r.opcode === OPCODE_ANNOUNCE, signal)
    if (res.epoch === 0) return undefined
    return this.#noteEpoch(res)
  }

  async close(): Promise<void> {
    const s = this.#socket
    this.#socket = undefined
    this.#bound = undefined
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()))
  }
}

/**
 * Whether `res` answers the MAP request `req`: the same nonce; for an error, also one without a body or with the same
 * protocol and internal port (servers do not all echo the nonce in an error).
 */
export function isAnswerTo(req: PcpMapRequest, res: PcpResponse): boolean {
  if (res.opcode !== OPCODE_MAP) return false
  if (res.map === undefined) return res.result !== 0
  if (Buffer.from(res.map.nonce).equals(Buffer.from(req.nonce))) return true
  return (
    res.result !== 0 && res.map.protocol === PROTOCOL_NUMBER[req.transport] && res.map.internalPort === req.internalPort
  )
}
