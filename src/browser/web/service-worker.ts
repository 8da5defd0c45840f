/**
 * The Service Worker of the Warren web app: a browser node that carries the page's own requests (navigations, CSS,
 * images, scripts, fetch/XHR) to an HTTP service over service streams, so an ordinary site works unmodified.
 *
 * On an origin of a service's own (the worker's URL names `target` and `service`), every path but the app's own
 * files (`/.warren/…`) is that path of the service: one service's pages cannot read another's responses.
 * On a shared origin, `/s/<ticket or id>/<service>/<path>` is `<path>` of that service. A request from such a page to another path
 * of the app's origin (`/style.css`, a root-relative link) goes to the same service; requests of the app's own page
 * go to the network. The relay to use is the `relay` parameter of the worker's URL.
 * Failures are answered with an HTML page naming the WarrenError's code, message and hint.
 * The page's messages: `'id'` is answered with the node's id and ticket; `{ redeem: { target, service, code } }` has the
 * node redeem an invite (`warren invite`) and is answered with `{ redeemed, id }` or `{ error, message, hint }`.
 */
import { isWarrenError } from '../../errors.ts'
import { type BrowserNode, startBrowserNode } from '../node.ts'
import { APP_PREFIX } from './page.ts'

// the Service Worker globals used here (the project compiles without the WebWorker library)
interface FetchEvent extends Event {
  request: Request
  clientId: string
  resultingClientId: string
  respondWith(r: Promise<Response>): void
}
interface WorkerScope {
  location: { href: string; origin: string }
  clients: { get(id: string): Promise<{ url: string } | undefined>; claim(): Promise<void> }
  skipWaiting(): Promise<void>
  addEventListener(type: string, listener: (e: Event & { waitUntil(p: Promise<unknown>): void }) => void): void
}

const sw = globalThis as unknown as WorkerScope
const PREFIX = /^\/s\/([^/]+)\/([^/]+)(\/.*)?$/

let node: Promise<BrowserNode> | undefined

function getNode(): Promise<BrowserNode> {
  const relay = new URL(sw.location.href).searchParams.get('relay')
  node ??= startBrowserNode({ relays: relay === null ? [] : [relay] }).catch((err: unknown) => {
    node = undefined
    throw err
  })
  return node
}

function prefixOf(to: Route): string {
  return `/s/${encodeURIComponent(to.target)}/${encodeURIComponent(to.service)}`
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** How a refused browser gets admitted: an invite link from the service's owner, or `warren allow`. */
function admitHint(err: unknown): string {
  const service = String((err as { details?: { service?: unknown } }).details?.service ?? '<service>')
  const name = escapeHtml(service)
  return `<p id="admit">Ask the owner of ${name} for an invite link (<code>warren invite ${name}</code>), or to admit this browser's node id (named above) with <code>warren allow ${name} &lt;id&gt;</code>.</p>`
}

function errorPage(err: unknown): Response {
  const e = isWarrenError(err) ? err : { code: 'ERR_INTERNAL', message: (err as Error).message, hint: undefined }
  const body = `<!doctype html><meta charset="utf-8"><title>${escapeHtml(e.code)}</title>
<h1 id="code">${escapeHtml(e.code)}</h1><p id="message">${escapeHtml(e.message)}</p>${e.hint === undefined ? '' : `<p id="hint">${escapeHtml(e.hint)}</p>`}${e.code === 'ERR_NOT_AUTHORIZED' ? admitHint(err) : ''}`
  const status = e.code === 'ERR_NOT_AUTHORIZED' ? 403 : e.code.startsWith('ERR_BAD') ? 400 : 502
  return new Response(body, {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'x-warren-error': e.code },
  })
}

type Route = { target: string; service: string; path: string; redirect?: boolean }

/**
 * Where a request of the app's origin goes: `/s/<target>/<service>/…` to that service; another path asked for by a
 * page of a service (a subresource of it, or a link it followed) to the same service — a followed link by a
 * redirect to its `/s/…` URL; anything else (the app's own page and scripts) to the network.
 */
async function route(event: FetchEvent): Promise<Route | undefined> {
  const url = new URL(event.request.url)
  if (url.origin !== sw.location.origin || url.pathname.startsWith(APP_PREFIX)) return undefined
  const own = new URL(sw.location.href).searchParams
  const target = own.get('target')
  const service = own.get('service')
  if (target !== null && service !== null) return { target, service, path: `${url.pathname}${url.search}` }
  const m = PREFIX.exec(url.pathname)
  if (m !== null) {
    return {
      target: decodeURIComponent(m[1]!),
      service: decodeURIComponent(m[2]!),
      path: `${m[3] ?? '/'}${url.search}`,
    }
  }
  const navigation = event.request.mode === 'navigate'
  const client = navigation || event.clientId === '' ? undefined : await sw.clients.get(event.clientId)
  const context = navigation ? event.request.referrer : client?.url
  const from = context === undefined || context === '' ? null : PREFIX.exec(new URL(context).pathname)
  if (from === null || new URL(context!).origin !== sw.location.origin) return undefined
  return {
    target: decodeURIComponent(from[1]!),
    service: decodeURIComponent(from[2]!),
    path: `${url.pathname}${url.search}`,
    redirect: navigation,
  }
}

async function answer(event: FetchEvent, to: Route): Promise<Response> {
  if (to.redirect === true) return Response.redirect(`${sw.location.origin}${prefixOf(to)}${to.path}`, 302)
  try {
    const req = event.request
    const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await req.arrayBuffer()
    const headers = new Headers(req.headers)
    const n = await getNode()
    const res = await n.fetch(to.target, to.service, to.path, {
      method: req.method,
      headers,
      ...(body ? { body } : {}),
    })
    // a redirect to a root-relative path stays inside the service's prefix
    const location = res.headers.get('location')
    if (location?.startsWith('/') === true && !location.startsWith('//')) {
      const headers = new Headers(res.headers)
      headers.set('location', `${prefixOf(to)}${location}`)
      return new Response(res.body, { status: res.status, statusText: res.statusText, headers })
    }
    return res
  } catch (err) {
    return errorPage(err)
  }
}

sw.addEventListener('install', (e) => e.waitUntil(sw.skipWaiting()))
sw.addEventListener('activate', (e) => e.waitUntil(sw.clients.claim()))
sw.addEventListener('fetch', (e) => {
  const event = e as unknown as FetchEvent
  event.respondWith(route(event).then((to) => (to === undefined ? fetch(event.request) : answer(event, to))))
})
sw.addEventListener('message', (e) => {
  const m = e as unknown as { data: unknown; source?: { postMessage(x: unknown): void } }
  if (m.data !== 'id') return
  void getNode().then(
    (n) => m.source?.postMessage({ id: n.id, ticket: n.ticket }),
    (err: unknown) =>
      m.source?.postMessage({ error: errorPage(err).headers.get('x-warren-error'), message: (err as Error).message }),
  )
})
// the page asks the worker's node to redeem the invite of its link (`#<target>/<service>?invite=<code>`)
sw.addEventListener('message', (e) => {
  const m = e as unknown as {
    data: { redeem?: { target: string; service: string; code: string } }
    source?: { postMessage(x: unknown): void }
  }
  const r = m.data?.redeem
  if (r === undefined) return
  void getNode()
    .then(async (n) => ({ redeemed: await n.redeemInvite(r.target, r.service, r.code), id: n.id }))
    .then(
      (answer) => m.source?.postMessage(answer),
      (err: unknown) => {
        const e = isWarrenError(err) ? err : { code: 'ERR_INTERNAL', message: (err as Error).message, hint: undefined }
        m.source?.postMessage({ error: e.code, message: e.message, hint: e.hint ?? '', redeem: true })
      },
    )
})
