/**
 * The HTML of the Warren web app's page: it loads `/.warren/app.js` (src/browser/web/app.ts), which installs the
 * Service Worker and opens the service named by the host name (`<service>.<node id>.<domain>`, an origin per service)
 * or by the URL's hash (`/#<ticket or id>/<service>`, one origin for all). `relay` is the relay WebSocket address the page's
 * node uses (`/dns4/relay.example/tcp/443/tls/ws/p2p/12D3KooW…`).
 */
export function webAppPage(relay: string): string {
  const attr = relay.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)
  return `<!doctype html>
<html data-relay="${attr}">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<title>Warren</title>
<h1>Warren</h1>
<p id="status">Starting…</p>
<p id="hint"></p>
<p>This browser's node id: <code id="node">…</code></p>
<p id="admit">A service's owner admits this browser with <code>warren allow &lt;service&gt; &lt;this id&gt;</code>, or sends an invite link made by <code>warren invite &lt;service&gt;</code>.</p>
<script src="/.warren/app.js"></script>
</html>
`
}

/** Where the app's own files are; every other path of a service's origin belongs to the service. */
export const APP_PREFIX = '/.warren/'

/** The files of the web app under dist/browser: URL path → file name and content type. */
export const WEB_APP_FILES: Record<string, { file: string; type: string }> = {
  '/.warren/app.js': { file: 'app.js', type: 'text/javascript' },
  '/.warren/sw.js': { file: 'sw.js', type: 'text/javascript' },
  '/.warren/warren.js': { file: 'warren.js', type: 'text/javascript' },
}

/**
 * The service an origin of its own stands for: `<service>.<node id in base36>.<domain>` (a node id in base36 is one
 * DNS label, `k51qzi5uqu5…`), or undefined for any other host name.
 */
export function serviceOrigin(hostname: string): { service: string; target: string } | undefined {
  const m = /^([a-z0-9][a-z0-9-]{0,62})\.(k51qzi5uqu5[a-z0-9]{40,60})\./.exec(hostname.toLowerCase())
  return m === null ? undefined : { service: m[1]!, target: m[2]! }
}
