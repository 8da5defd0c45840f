/**
 * UDP hole punching on sockets the caller owns. Both sides send small probes carrying a shared session token; a side that
 * receives a probe answers with an ack from the same socket, and the first probe or ack that arrives proves a working
 * (socket, remote endpoint) pair. Three plans:
 *
 * - `simultaneous`: both NATs map endpoint-independently (cone) or there is no NAT; both sides probe the other's
 *   STUN-learned address at once.
 * - `birthday-hard` / `birthday-easy`: one side's NAT picks a new random port per destination (symmetric). The hard side
 *   opens many sockets and sends one probe from each to the easy side's fixed mapping, which opens a NAT mapping per
 *   socket; the easy side then probes random ports of the hard side's public IP until one hits an open mapping.
 *   With 256 mappings out of ~64k ports each probe hits with p ≈ 1/252: 512 probes succeed ≈ 87% of the time, the
 *   default 768 ≈ 95% (768 datagrams of 22 bytes, under half a second).
 *
 * Every loop is bounded by a probe budget and a deadline.
 *
 * @packageDocumentation
 */
import { randomInt } from 'node:crypto'
import { WarrenError } from '../../errors.ts'
import type { Endpoint, PacketSocket } from '../../p2p/udx/packet-socket.ts'

/** What a node learned about its own NAT from STUN: `easy` maps endpoint-independently, `hard` per destination. */
export type NatBehaviour = 'easy' | 'hard'

export type PunchPlan = 'simultaneous' | 'birthday-hard' | 'birthday-easy'

const MAGIC = [0x57, 0x52, 0x4e, 0x50] // 'WRNP'
const VERSION = 1
const KIND_PROBE = 1
const KIND_ACK = 2
export const PUNCH_TOKEN_LENGTH = 16
const PACKET_LENGTH = 6 + PUNCH_TOKEN_LENGTH

/** The plan for a pair of NAT behaviours, from our side. Two hard NATs still get a (short) simultaneous attempt. */
export function punchPlan(local: NatBehaviour, remote: NatBehaviour): PunchPlan {
  if (local === 'hard' && remote === 'easy') return 'birthday-hard'
  if (local === 'easy' && remote === 'hard') return 'birthday-easy'
  return 'simultaneous'
}

/** Classifies a NAT from two STUN answers got from one socket via two servers. */
export function natBehaviour(mappedA: Endpoint, mappedB: Endpoint): NatBehaviour {
  return mappedA.host === mappedB.host && mappedA.port === mappedB.port ? 'easy' : 'hard'
}

export function encodeProbe(kind: 'probe' | 'ack', token: Uint8Array): Uint8Array {
  if (token.length !== PUNCH_TOKEN_LENGTH) throw new RangeError(`a punch token is ${PUNCH_TOKEN_LENGTH} bytes`)
  const out = new Uint8Array(PACKET_LENGTH)
  out.set(MAGIC, 0)
  out[4] = VERSION
  out[5] = kind === 'probe' ? KIND_PROBE : KIND_ACK
  out.set(token, 6)
  return out
}

/** 'probe' or 'ack' when `data` is a punch packet with our token, else undefined. */
export function decodeProbe(data: Uint8Array, token: Uint8Array): 'probe' | 'ack' | undefined {
  if (data.length !== PACKET_LENGTH || data[4] !== VERSION) return undefined
  for (let i = 0; i < 4; i++) if (data[i] !== MAGIC[i]) return undefined
  for (let i = 0; i < PUNCH_TOKEN_LENGTH; i++) if (data[6 + i] !== token[i]) return undefined
  return data[5] === KIND_PROBE ? 'probe' : data[5] === KIND_ACK ? 'ack' : undefined
}

export interface PunchOptions {
  plan: PunchPlan
  /** Our sockets; index 0 is the one STUN ran on. `birthday-hard` uses all of them, the other plans only the first. */
  sockets: readonly PacketSocket[]
  /** Shared secret of this attempt (exchanged over the relayed connection). */
  token: Uint8Array
  /** The peer's STUN-learned public endpoint. For `birthday-easy` only its host matters (plus this port, tried first). */
  remote: Endpoint
  /** Give up after this long (default 10 s). */
  timeoutMs?: number
  /** Most probes to send in all (default 768 for birthday-easy, two per socket for birthday-hard, 400 otherwise). */
  maxProbes?: number
  /** Probe interval for `simultaneous` (default 20 ms); `birthday-easy` sends `burst` probes per interval. */
  intervalMs?: number
  /** Probes per interval in `birthday-easy` (default 8). */
  burst?: number
  /** Answer probes at once but send none until this settles (the easy side of a birthday waits for the hard side). */
  probeAfter?: Promise<unknown>
  signal?: AbortSignal
}

export interface PunchResult {
  /** Index into `sockets` of the socket that works. */
  socketIndex: number
  /** The peer endpoint that answered (its real public mapping toward us). */
  remote: Endpoint
  /** Time from the start of punching to the first probe/ack received. */
  ms: number
  probesSent: number
}

export interface PunchSession {
  readonly result: Promise<PunchResult>
  /** Stops answering probes and removes listeners (call once the data path runs). */
  stop(): void
}

/**
 * Starts punching. The returned session keeps answering the peer's probes with acks until {@link PunchSession.stop}, so a
 * peer that is a little behind still completes. Rejects with ERR_TIMEOUT when no probe or ack came back in time.
 */
export function punch(options: PunchOptions): PunchSession {
  const { plan, sockets, token, remote } = options
  const timeoutMs = options.timeoutMs ?? 10_000
  const maxProbes =
    options.maxProbes ?? (plan === 'birthday-easy' ? 768 : plan === 'birthday-hard' ? sockets.length * 2 : 400)
  const intervalMs = options.intervalMs ?? (plan === 'birthday-easy' ? 5 : 20)
  const burst = options.burst ?? 8
  if (sockets.length === 0) throw new RangeError('punch needs at least one socket')
  const probe = encodeProbe('probe', token)
  const ack = encodeProbe('ack', token)
  const started = performance.now()
  let probesSent = 0
  let done = false
  let timer: NodeJS.Timeout | undefined
  let deadline: NodeJS.Timeout | undefined
  const offs: Array<() => void> = []
  const tried = new Set<number>()

  let resolveResult!: (r: PunchResult) => void
  let rejectResult!: (e: unknown) => void
  const result = new Promise<PunchResult>((resolve, reject) => {
    resolveResult = resolve
    rejectResult = reject
  })
  result.catch(() => undefined)

  const stopProbing = (): void => {
    clearTimeout(timer)
    clearTimeout(deadline)
    options.signal?.removeEventListener('abort', onAbort)
  }
  const stop = (): void => {
    stopProbing()
    done = true
    for (const off of offs.splice(0)) off()
  }
  const succeed = (socketIndex: number, from: Endpoint): void => {
    if (done) return
    done = true
    stopProbing()
    resolveResult({ socketIndex, remote: from, ms: performance.now() - started, probesSent })
  }
  const fail = (err: unknown): void => {
    if (done) return
    stop()
    rejectResult(err)
  }
  const onAbort = (): void => fail(options.signal?.reason ?? new Error('aborted'))

  const active = plan === 'birthday-hard' ? sockets : sockets.slice(0, 1)
  active.forEach((sock, index) => {
    offs.push(
      sock.onMessage((data, from) => {
        const kind = decodeProbe(data, token)
        if (kind === undefined) return
        if (kind === 'probe') sock.send(ack, from)
        succeed(index, from)
      }),
    )
  })

  const send = (sock: PacketSocket, to: Endpoint): void => {
    probesSent++
    sock.send(probe, to)
  }
  const randomPort = (): number => {
    for (;;) {
      const p = randomInt(1024, 65536)
      if (!tried.has(p)) {
        tried.add(p)
        return p
      }
    }
  }
  const tick = (): void => {
    if (done) return
    if (probesSent >= maxProbes) return
    if (plan === 'birthday-easy') {
      for (let i = 0; i < burst && probesSent < maxProbes; i++) {
        const port = tried.size === 0 ? remote.port : randomPort()
        tried.add(port)
        send(sockets[0]!, { host: remote.host, port })
      }
    } else if (plan === 'birthday-hard') {
      // One probe per socket opens one mapping each; one more round in case of loss, then only answer.
      for (const s of sockets) if (probesSent < maxProbes) send(s, remote)
    } else {
      send(sockets[0]!, remote)
    }
    const again = plan === 'birthday-hard' ? (probesSent < maxProbes ? 200 : -1) : intervalMs
    if (again >= 0) timer = setTimeout(tick, again)
  }
  deadline = setTimeout(() => {
    fail(
      new WarrenError(
        'ERR_TIMEOUT',
        `no direct UDP path to ${remote.host} after ${probesSent} probes in ${timeoutMs} ms`,
        {
          hint: 'Both NATs may map each destination to a new port (symmetric); the relayed connection stays in use.',
          details: { plan, probesSent, remote },
        },
      ),
    )
  }, timeoutMs)
  if (options.signal?.aborted === true) onAbort()
  else {
    options.signal?.addEventListener('abort', onAbort)
    if (options.probeAfter === undefined) tick()
    else options.probeAfter.then(tick, fail)
  }
  return { result, stop }
}
