/**
 * The page of the Warren web app: it installs the Service Worker (src/browser/web/service-worker.ts). On a host
 * name of a service's own (`<service>.<node id>.<domain>`) it then reloads, and the worker renders every path from
 * that service; elsewhere `/#<ticket or id>/<service>[/<path>]` opens `/s/<ticket or id>/<service>/<path>`. Without a hash it shows this browser's node id, which a service owner adds to the service's `allow`.
 * The relay is the page's `data-relay` attribute on `<html>`, set by whoever serves the page.
 */
import { WarrenError } from '../../errors.ts'
import { parseTarget } from '../target.ts'
import { serviceOrigin } from './page.ts'

interface Doc {
  documentElement: { dataset: Record<string, string | undefined> }
  getElementById(id: string): { textContent: string | null } | null
}
interface Nav {
  serviceWorker: {
    register(url: string, opts: { scope: string }): Promise<unknown>
    ready: Promise<{ active: { postMessage(x: unknown): void } | null }>
    addEventListener(type: 'message', f: (e: { data: { id?: string; error?: string; message?: string } }) => void): void
  }
}
const doc = (globalThis as unknown as { document: Doc }).document
const nav = (globalThis as unknown as { navigator: Nav }).navigator
const loc = (globalThis as unknown as { location: { hash: string; href: string; hostname: string; reload(): void } })
  .location

function show(id: string, text: string): void {
  const el = doc.getElementById(id)
  if (el !== null) el.textContent = text
}

/** `<target>/<service>[/<path>]` from the hash; ERR_BAD_TICKET etc. for a malformed target. */
export function parseHash(hash: string): { target: string; service: string; path: string } | undefined {
  const text = decodeURIComponent(hash.replace(/^#/, ''))
  if (text === '') return undefined
  const [target = '', service = '', ...rest] = text.split('/')
  parseTarget(target)
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/i.test(service)) {
    throw new WarrenError('ERR_USAGE', `"${service.slice(0, 70)}" is not a service name`, {
      hint: 'The link has the form https://<relay>/#<ticket or node id>/<service>.',
    })
  }
  return { target, service, path: `/${rest.join('/')}` }
}

async function main(): Promise<void> {
  const relay = doc.documentElement.dataset.relay ?? ''
  const own = serviceOrigin(loc.hostname)
  const query = new URLSearchParams({ relay, ...(own === undefined ? {} : own) })
  await nav.serviceWorker.register(`/.warren/sw.js?${query}`, { scope: '/' })
  const reg = await nav.serviceWorker.ready
  if (own !== undefined) {
    // an origin of the service's own: from now on the worker answers every path from the service
    loc.reload()
    return
  }
  let to: ReturnType<typeof parseHash>
  try {
    to = parseHash(loc.hash)
  } catch (err) {
    const e = err as WarrenError
    show('status', `${e.code}: ${e.message}`)
    show('hint', e.hint ?? '')
    return
  }
  nav.serviceWorker.addEventListener('message', (e) => {
    if (e.data.id !== undefined) show('node', e.data.id)
    else show('status', `${e.data.error}: ${e.data.message}`)
  })
  if (to === undefined) {
    show('status', 'Open a link of the form /#<ticket or node id>/<service>.')
    reg.active?.postMessage('id')
    return
  }
  loc.href = `/s/${encodeURIComponent(to.target)}/${encodeURIComponent(to.service)}${to.path}`
}

void main()
