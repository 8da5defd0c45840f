/**
 * The local API's methods: parameter checks, the call into the node, and what must survive a restart
 * (runtime services and forwards go to state.json).
 */
import type { Socket } from 'node:net'
import { z } from 'zod'
import { formatListenAddress, parseListenAddress } from '../config/listen-address.ts'
import { parseTarget } from '../config/target.ts'
import { WarrenError } from '../errors.ts'
import type { ReloadResult } from '../node/reload.ts'
import type { WarrenNodeApi } from '../node/warren-node.ts'
import { describePipeEnd, pipeStream, reasonOf } from '../p2p/pipe.ts'
import type { Admission } from './admission.ts'
import { type ApiMethod, type ApiMethods, serviceConfigOf } from './api-protocol.ts'
import type { ApiHandler } from './api-server.ts'
import type { StateStore } from './state.ts'
import { FramedStream } from './stream-frames.ts'

const addrs = z.array(z.string()).optional()
const nodeRef = { node: z.string().min(1), addrs }

const PARAMS = {
  id: z.undefined().or(z.object({})),
  status: z.undefined().or(z.object({})),
  'services.list': z.undefined().or(z.object({})),
  'services.add': z.object({
    name: z.string().min(1),
    target: z.string().min(1),
    allow: z.array(z.string()).optional(),
    kubo: z.boolean().optional(),
    replace: z.boolean().optional(),
  }),
  'services.remove': z.object({ name: z.string().min(1) }),
  'peers.list': z.undefined().or(z.object({})),
  'forward.add': z.object({
    ...nodeRef,
    service: z.string().min(1),
    listen: z.string().min(1),
    check: z.boolean().optional(),
    public: z.boolean().optional(),
  }),
  'forward.list': z.undefined().or(z.object({})),
  'forward.remove': z.object({ listen: z.string().min(1) }),
  ping: z.object(nodeRef),
  netcheck: z.undefined().or(z.object({})),
  lookup: z.object({ node: z.string().min(1), fresh: z.boolean().optional(), all: z.boolean().optional() }),
  'daemon.stop': z.undefined().or(z.object({})),
  'daemon.reload': z.undefined().or(z.object({})),
  'stream.open': z.object({ ...nodeRef, service: z.string().min(1) }),
  'node.call': z.object({ ...nodeRef, method: z.string().min(1), params: z.unknown().optional() }),
  'services.allow': z.object({ service: z.string().min(1), node: z.string().min(1) }),
  'services.deny': z.object({ service: z.string().min(1), node: z.string().min(1) }),
  'invites.create': z.object({ service: z.string().min(1), ttlMs: z.number().int().optional() }),
  'invites.list': z.undefined().or(z.object({})),
  'invites.revoke': z.object({ inviteId: z.string().min(1) }),
} satisfies Record<ApiMethod, z.ZodType>

function parseParams<M extends ApiMethod>(method: M, params: unknown): ApiMethods[M]['params'] {
  const r = PARAMS[method].safeParse(params ?? undefined)
  if (r.success) return r.data as ApiMethods[M]['params']
  const problems = r.error.issues.map((i) => `params${i.path.map((p) => `.${String(p)}`).join('')}: ${i.message}`)
  throw new WarrenError('ERR_USAGE', `${method}: ${problems.join('; ')}`, {
    hint: 'See src/daemon/api-protocol.ts for the parameters of each local API method.',
    details: { method, problems },
  })
}

export interface MethodContext {
  node: WarrenNodeApi
  state: StateStore
  /** Addresses the node learned from tickets and --addr (persisted so they survive restarts). */
  learned?(): Record<string, string[]>
  /** Asks the daemon to stop (after the answer is sent). */
  requestStop(): void
  /** Reads config.json again and applies it (`daemon.reload`); throws, changing nothing, when it is invalid. */
  reload?(): Promise<ReloadResult>
  /** Allow lists and invites (src/daemon/admission.ts); absent where the daemon keeps no home. */
  admission?: Admission
  log(level: 'debug' | 'info' | 'warn', message: string): void
}

type Impl = {
  [M in Exclude<ApiMethod, 'stream.open'>]: (p: ApiMethods[M]['params']) => Promise<ApiMethods[M]['result']>
}

/** Saves newly learned addresses, if any. */
async function saveLearned(ctx: MethodContext): Promise<void> {
  const learned = ctx.learned?.()
  if (learned === undefined || JSON.stringify(learned) === JSON.stringify(ctx.state.state.learned)) return
  await ctx.state.update((s) => {
    s.learned = learned
  })
}

function admissionOf(ctx: MethodContext): Admission {
  if (ctx.admission !== undefined) return ctx.admission
  throw new WarrenError('ERR_USAGE', 'this daemon does not edit allow lists or make invites', {
    hint: 'Edit `allow` in config.json and run `warren reload`.',
  })
}

function implementations(ctx: MethodContext): Impl {
  const { node, state } = ctx
  return {
    id: async () => node.identity(),
    status: async () => node.status(),
    'services.list': async () => node.services(),
    'services.add': async (p) => {
      parseTarget(p.target) // ERR_BAD_TARGET names what is wrong with it
      const svc = serviceConfigOf(p)
      const info = node.expose(p.name, svc, { replace: p.replace ?? false })
      await state.update((s) => {
        s.services[p.name] = svc
      })
      return info
    },
    'services.remove': async (p) => {
      const source = node.services().find((s) => s.name === p.name)?.source ?? 'runtime'
      node.unexpose(p.name)
      if (p.name in state.state.services) {
        await state.update((s) => {
          delete s.services[p.name]
        })
      }
      return { name: p.name, source }
    },
    'peers.list': async () => node.peers(),
    'forward.add': async (p) => {
      const spec = {
        node: p.node,
        service: p.service,
        listen: p.listen,
        ...(p.addrs ? { addrs: p.addrs } : {}),
        ...(p.check === false ? { check: false } : {}),
        ...(p.public === true ? { public: true } : {}),
      }
      const info = await node.addForward(spec)
      await state.update((s) => {
        s.forwards = s.forwards.filter((f) => f.listen !== info.listen)
        s.forwards.push({ ...spec, listen: info.listen })
      })
      await saveLearned(ctx)
      return info
    },
    'forward.list': async () => node.forwards(),
    'forward.remove': async (p) => {
      const listen = formatListenAddress(parseListenAddress(p.listen)) // `5432` is 127.0.0.1:5432
      const before = new Set(node.forwards().map((f) => f.listen))
      try {
        await node.removeForward(p.listen)
      } catch (err) {
        // a saved forward that could not be restored (port taken) is not live, but removing it must still work
        const saved = state.state.forwards.some((f) => f.listen === listen)
        if (!(err instanceof WarrenError && err.code === 'ERR_FORWARD_NOT_FOUND' && saved)) throw err
      }
      const after = new Set(node.forwards().map((f) => f.listen))
      const gone = new Set([...before].filter((l) => !after.has(l)))
      await state.update((s) => {
        s.forwards = s.forwards.filter((f) => f.listen !== listen && !gone.has(f.listen))
      })
      return { listen }
    },
    ping: async (p) => {
      const res = await node.ping(p.node, p.addrs ? { addrs: p.addrs } : {})
      await saveLearned(ctx)
      return res
    },
    'node.call': async (p) => {
      const res = await node.callNode(p.node, p.method, p.params, p.addrs ? { addrs: p.addrs } : {})
      await saveLearned(ctx)
      return res
    },
    netcheck: async () => node.netcheck(),
    lookup: async (p) => node.lookup(p.node, { fresh: p.fresh ?? false, all: p.all ?? false }),
    'daemon.reload': async () => {
      if (ctx.reload === undefined) {
        throw new WarrenError('ERR_USAGE', 'this daemon does not reload its config', {
          hint: 'Restart it (`warren down`, then `warren up`).',
        })
      }
      return ctx.reload()
    },
    'services.allow': async (p) => admissionOf(ctx).allow(p.service, p.node),
    'services.deny': async (p) => admissionOf(ctx).deny(p.service, p.node),
    'invites.create': async (p) => admissionOf(ctx).invite(p.service, p.ttlMs),
    'invites.list': async () => admissionOf(ctx).invites.list(),
    'invites.revoke': async (p) => admissionOf(ctx).invites.revoke(p.inviteId),
    'daemon.stop': async () => {
      setImmediate(() => ctx.requestStop())
      return { stopping: true, pid: process.pid }
    },
  }
}

/**
 * The daemon's side of a `stream.open` connection after its result line: frames (src/daemon/stream-frames.ts), so
 * that a stream the remote side cuts reaches the client as ABORT with the reason, and a client that sends ABORT or
 * goes away without END resets the remote stream instead of closing it as if it were complete.
 */
function framedApiStream(socket: Socket): FramedStream {
  return new FramedStream(socket, {
    aborted: (info) => new Error(`the client aborted the stream: ${info.message}`),
    lost: (cause) =>
      new Error(`the client went away before the stream ended${cause === undefined ? '' : `: ${cause.message}`}`),
    describe: (err) => {
      const code = (err as { code?: unknown }).code
      return {
        code: typeof code === 'string' && code.startsWith('ERR_') ? code : 'ERR_STREAM_ABORTED',
        message: reasonOf(err),
      }
    },
  })
}

/** The handler the API server calls. */
export function createApiHandler(ctx: MethodContext): ApiHandler {
  const impl = implementations(ctx)
  return {
    async call(method, params) {
      if (!(method in impl)) {
        // `<node>.<method>`: a method of another node (local methods win; a node id or ticket has no dot)
        const dot = method.indexOf('.')
        if (dot > 0 && dot < method.length - 1) {
          const p = parseParams('node.call', { node: method.slice(0, dot), method: method.slice(dot + 1), params })
          return impl['node.call'](p)
        }
        throw new WarrenError('ERR_API', `unknown local API method "${method}"`, {
          hint: 'The daemon may be older than this client; restart it with the same Warren version.',
          details: { method },
        })
      }
      const m = method as keyof Impl
      const fn = impl[m] as (p: unknown) => Promise<unknown>
      return fn(parseParams(m, params))
    },
    async openStream(socket: Socket, params, accept) {
      const p = parseParams('stream.open', params)
      const abort = new AbortController()
      const onClose = (): void => abort.abort(new Error('client went away'))
      socket.once('close', onClose)
      const stream = await ctx.node.openService(p.node, p.service, {
        signal: abort.signal,
        ...(p.addrs ? { addrs: p.addrs } : {}),
      })
      socket.off('close', onClose)
      if (socket.destroyed) {
        stream.abort(new Error('client went away'))
        return
      }
      accept({ node: p.node, service: p.service })
      const framed = framedApiStream(socket) // from here on, the client going away is an abort
      framed.on('error', () => {}) // pipeStream handles errors while it runs; one before or after must not throw
      await saveLearned(ctx).catch((err: Error) => ctx.log('warn', `saving learned addresses: ${err.message}`))
      if (framed.destroyed) {
        stream.abort(new Error('the client went away before the stream ended'))
        return
      }
      const result = await pipeStream(stream, framed)
      ctx.log(
        result.error === undefined ? 'debug' : 'warn',
        describePipeEnd(`warren connect to ${p.node}/${p.service}`, result),
      )
    },
  }
}
