/**
 * `warren invite <service>`: a one-time, expiring invite to a service. The daemon keeps the code's hash (invites.json
 * in the home, 0600); the command prints a link for the Warren web app (`<web app>/#<ticket>/<service>?invite=<code>`)
 * and the bare code. Opening the link in a browser, or redeeming the code with the RPC method `_invite.redeem` from
 * another node, adds that node's id to the service's `allow` list (src/node/invites.ts).
 */
import type { Command } from 'commander'
import type { InviteResult } from '../daemon/admission.ts'
import { WarrenError } from '../errors.ts'
import { formatNodeIdBase36, parseNodeId } from '../identity/node-id.ts'
import type { InviteSummary } from '../node/invites.ts'
import { say, sayJson, table, withClient } from './common.ts'

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `90s`, `15m`, `2h`, `7d` (or a plain number of seconds) as ms; ERR_USAGE otherwise. */
export function parseTtl(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim())
  if (m === null) {
    throw new WarrenError('ERR_USAGE', `--ttl "${text}" is not a duration`, {
      hint: 'Use a whole number with s, m, h or d: --ttl 90s, --ttl 15m, --ttl 2h, --ttl 7d (1 s to 30 days).',
    })
  }
  return Number(m[1]) * UNITS[m[2] === '' ? 's' : m[2]!]!
}

/** A time to live in its largest whole unit: `15m`, `2h`, `90s`, `7d`. */
export function formatTtl(ms: number): string {
  for (const unit of ['d', 'h', 'm'] as const) if (ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`
  return `${Math.round(ms / 1000)}s`
}

/** The web app's base URL from --web: an http(s) URL, reduced to its origin and path. */
export function parseWebBase(text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    url = new URL('invalid:')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new WarrenError('ERR_USAGE', `--web "${text}" is not an http(s) URL`, {
      hint: 'Give the address the web app is served at, for example --web https://relay.example/',
    })
  }
  return `${url.origin}${url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`}`
}

/**
 * The invite link for a web app served at `base`: `<base>#<ticket>/<service>?invite=<code>` (the shared origin), or
 * with `serviceOrigin` `<scheme>://<service>.<node id in base36>.<host>/.warren/invite#invite=<code>` (the service's
 * own origin, for a web app served under a wildcard name).
 */
export function inviteLink(
  base: string,
  inv: Pick<InviteResult, 'ticket' | 'service' | 'code' | 'id'>,
  serviceOrigin = false,
): string {
  if (!serviceOrigin) return `${base}#${inv.ticket}/${inv.service}?invite=${inv.code}`
  const url = new URL(base)
  url.hostname = `${inv.service}.${formatNodeIdBase36(parseNodeId(inv.id))}.${url.hostname}`
  return `${url.origin}/.warren/invite#invite=${inv.code}`
}

interface InviteFlags {
  ttl: string
  web?: string
  serviceOrigin?: boolean
  list?: boolean
  revoke?: string
  json?: boolean
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString()
}

/** `warren invite --list`: one line per invite, never a code. */
function printList(list: InviteSummary[]): void {
  if (list.length === 0) {
    say('no invites')
    return
  }
  say(
    table(
      list.map((i) => [
        i.inviteId,
        `${i.service}  ${i.state === 'redeemed' ? `redeemed ${iso(i.usedAt)} by ${i.usedBy}` : `${i.state}, ${i.state === 'open' ? 'until' : 'since'} ${iso(i.expiresAt)}`}`,
      ]),
    ),
  )
}

async function create(service: string, opts: InviteFlags, cmd: Command): Promise<void> {
  const ttlMs = parseTtl(opts.ttl)
  const web = opts.web === undefined ? undefined : parseWebBase(opts.web)
  const inv = await withClient(cmd, (c) => c.call('invites.create', { service, ttlMs }))
  const base = web ?? inv.webBases[0]
  const link = base === undefined ? undefined : inviteLink(base, inv, opts.serviceOrigin === true)
  if (opts.json === true) {
    return sayJson({
      inviteId: inv.inviteId,
      service: inv.service,
      code: inv.code,
      expiresAt: iso(inv.expiresAt),
      ttlMs: inv.ttlMs,
      node: inv.id,
      ticket: inv.ticket,
      link: link ?? null,
      fragment: `#${inv.ticket}/${inv.service}?invite=${inv.code}`,
    })
  }
  say(`invite ${inv.inviteId} to ${inv.service}, works once, for ${formatTtl(inv.ttlMs)} (until ${iso(inv.expiresAt)})`)
  if (link !== undefined) say(`link: ${link}`)
  else {
    say(`link: <web app>/#${inv.ticket}/${inv.service}?invite=${inv.code}`)
    say('  (no relay with a DNS name in config `relays`: give --web <url of the web app> for a whole link)')
  }
  say(`code: ${inv.code}`)
  say(`another node: warren call ${inv.id}._invite.redeem '{"service":"${inv.service}","code":"${inv.code}"}'`)
}

export function register(program: Command): void {
  program
    .command('invite')
    .description('make a one-time, expiring invite to a service: a link for a browser, or a code for another node')
    .argument('[service]', 'the service to invite to (one this node exposes)')
    .option('--ttl <duration>', 'how long the invite works: 90s, 15m, 2h, 7d (1 s to 30 days)', '15m')
    .option('--web <url>', 'where the Warren web app is served (default: https://<host>/ of a relay with a DNS name)')
    .option(
      '--service-origin',
      "link to the service's own origin (<service>.<node id>.<web app host>), for a web app under a wildcard name",
    )
    .option('--list', 'list the invites: open, redeemed (and by whom), expired; never their codes')
    .option('--revoke <invite id>', 'make an invite stop working (the id from --list or from making it)')
    .option('--json', 'print the invite (or the list) as JSON')
    .addHelpText(
      'after',
      "\nThe node that redeems the invite first is added to the service's `allow` list (config.json, or state.json for\n" +
        'a service of `warren expose`); the invite then stops working. Treat the link like a password until then.\n' +
        'Another node redeems the bare code with:\n' +
        '  warren call <this node>._invite.redeem \'{"service": "<service>", "code": "<code>"}\'\n' +
        'See docs/browser.md ("Admitting a browser").',
    )
    .action(async (service: string | undefined, opts: InviteFlags, cmd: Command) => {
      const modes = [service !== undefined, opts.list === true, opts.revoke !== undefined].filter(Boolean).length
      if (modes !== 1) {
        throw new WarrenError('ERR_USAGE', 'give a service to invite to, or --list, or --revoke <invite id>', {
          hint: 'For example `warren invite web`, `warren invite --list` or `warren invite --revoke 3f9a0c12d4e5`.',
        })
      }
      if (service !== undefined) return create(service, opts, cmd)
      if (opts.list === true) {
        const list = await withClient(cmd, (c) => c.call('invites.list'))
        return opts.json === true ? sayJson(list) : printList(list)
      }
      const gone = await withClient(cmd, (c) => c.call('invites.revoke', { inviteId: opts.revoke! }))
      if (opts.json === true) return sayJson(gone)
      say(`revoked invite ${gone.inviteId} to ${gone.service} (it was ${gone.state}); its code no longer works`)
    })
}
