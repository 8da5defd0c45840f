/**
 * The page of the Warren web app: it installs the Service Worker (src/browser/web/service-worker.ts). On a host
 * name of a service's own (`<service>.<node id>.<domain>`) it then reloads, and the worker renders every path from
 * that service; elsewhere `/#<ticket or id>/<service>[/<path>]` opens `/s/<ticket or id>/<service>/<path>`. Without a hash it shows this browser's node id, which a service owner adds to the service's `allow`.
 * A link with an invite, printed by `warren invite`, first has the worker's node redeem the code with the service's
 * node, shows the outcome, and on success opens the service: `/#<ticket or id>/<service>?invite=<code>` on the shared
 * origin, `/.warren/invite#invite=<code>` on a service's own origin (a path of the app, so the page runs even where the
 * worker already answers every other path from the service).
 * The relay is the page's `data-relay` attribute on `<html>`, set by whoever serves the page.
 */
import { WarrenError } from '../../errors.ts'
import { parseTarget } from '../target.ts'
import { APP_PREFIX, serviceOrigin } from './page.ts'

interface Doc {
  documentElement: { dataset: Record<string, string | undefined> }
  getElementById(id: string): { textContent: string | null } | null
}
/** What the worker posts back: the node id, a redeemed invite, or an error. */
interface WorkerAnswer {
  id?: string
  redeemed?: { service: string; node: string; already: boolean }
  error?: string
  message?: string
  hint?: string
}
interface Nav {
  serviceWorker: {
    register(url: string, opts: { scope: string }): Promise<unknown>
    ready: Promise<{ active: { postMessage(x: unknown): void } | null }>
    addEventListener(type: 'message', f: (e: { data: WorkerAnswer }) => void): void
  }
}
const doc = (globalThis as unknown as { document: Doc }).document
const nav = (globalThis as unknown as { navigator: Nav }).navigator
const loc = (
  globalThis as unknown as {
    location: {
      hash: string
      href: string
      hostname: string
      pathname: string
      reload(): void
      replace(url: string): void
    }
  }
).location
/** How long the page shows an accepted invite before it opens the service, ms. */
const SHOW_ADMITTED_MS = 1_000

function show(id: string, text: string): void {
  const el = doc.getElementById(id)
  if (el !== null) el.textContent = text
}

/** A link's target, service, path and invite code. */
export interface LinkParts {
  target: string
  service: string
  path: string
  /** The code of `?invite=<code>` at the end of the hash. */
  invite?: string
}

/** The invite code of a query (`invite=<code>`), or undefined; ERR_INVITE_INVALID when it cannot be a code. */
export function inviteOf(query: string): string | undefined {
  const code = new URLSearchParams(query).get('invite')
  if (code === null) return undefined
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(code)) {
    throw new WarrenError('ERR_INVITE_INVALID', 'the invite code in the link is malformed', {
      hint: 'Copy the whole link again: the code is 43 letters, digits, "-" and "_".',
    })
  }
  return code
}

/**
 * `<target>/<service>[/<path>][?invite=<code>]` from the hash; ERR_BAD_TICKET etc. for a malformed target,
 * ERR_INVITE_INVALID for an invite code that cannot be one.
 */
export function parseHash(hash: string): LinkParts | undefined {
  const raw = hash.replace(/^#/, '')
  const q = raw.indexOf('?')
  const text = decodeURIComponent(q === -1 ? raw : raw.slice(0, q))
  if (text === '') return undefined
  const [target = '', service = '', ...rest] = text.split('/')
  parseTarget(target)
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/i.test(service)) {
    throw new WarrenError('ERR_USAGE', `"${service.slice(0, 70)}" is not a service name`, {
      hint: 'The link has the form https://<relay>/#<ticket or node id>/<service>.',
    })
  }
  const parts: LinkParts = { target, service, path: `/${rest.join('/')}` }
  const invite = q === -1 ? undefined : inviteOf(raw.slice(q + 1))
  if (invite !== undefined) parts.invite = invite
  return parts
}

/** The app's URL of a service (shared origin). */
function serviceUrl(to: LinkParts): string {
  return `/s/${encodeURIComponent(to.target)}/${encodeURIComponent(to.service)}${to.path}`
}

function showError(e: { code?: string; error?: string; message?: string; hint?: string | undefined }): void {
  show('status', `${e.code ?? e.error}: ${e.message}`)
  show('hint', e.hint ?? '')
}

/**
 * Shows what the worker answers: the node id, and for `redeem` (an invite to redeem) the outcome; once the invite
 * is accepted the page opens `then`.
 */
function follow(
  worker: { postMessage(x: unknown): void } | null,
  redeem: { target: string; service: string; code: string } | undefined,
  then: string,
): void {
  nav.serviceWorker.addEventListener('message', (e) => {
    const d = e.data
    if (d.id !== undefined) show('node', d.id)
    if (d.redeemed !== undefined) {
      const { service, already } = d.redeemed
      show(
        'status',
        already
          ? `This browser was admitted to ${service} before; opening it…`
          : `Invite accepted: this browser may now use ${service}; opening it…`,
      )
      setTimeout(() => loc.replace(then), SHOW_ADMITTED_MS)
    } else if (d.error !== undefined) showError(d)
  })
  if (redeem === undefined) {
    worker?.postMessage('id')
    return
  }
  show('status', `Redeeming the invite to ${redeem.service}…`)
  worker?.postMessage({ redeem })
}

async function main(): Promise<void> {
  const relay = doc.documentElement.dataset.relay ?? ''
  const own = serviceOrigin(loc.hostname)
  const query = new URLSearchParams({ relay, ...(own === undefined ? {} : own) })
  await nav.serviceWorker.register(`/.warren/sw.js?${query}`, { scope: '/' })
  const reg = await nav.serviceWorker.ready
  if (own !== undefined) {
    let code: string | undefined
    try {
      code = inviteOf(loc.hash.replace(/^#\??/, ''))
    } catch (err) {
      return showError(err as WarrenError)
    }
    if (code !== undefined) return follow(reg.active, { ...own, code }, '/')
    // an origin of the service's own: from now on the worker answers every path from the service
    if (loc.pathname.startsWith(APP_PREFIX)) loc.replace('/')
    else loc.reload()
    return
  }
  let to: ReturnType<typeof parseHash>
  try {
    to = parseHash(loc.hash)
  } catch (err) {
    return showError(err as WarrenError)
  }
  if (to === undefined) {
    show('status', 'Open a link of the form /#<ticket or node id>/<service>.')
    return follow(reg.active, undefined, '/')
  }
  if (to.invite !== undefined) {
    return follow(reg.active, { target: to.target, service: to.service, code: to.invite }, serviceUrl(to))
  }
  loc.href = serviceUrl(to)
}

void main()
