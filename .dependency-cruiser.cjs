/**
 * Warren's layers, bottom to top: a folder may import only from the folders below it (and from itself). `npm test`
 * runs `npm run layers`, which fails on any import that goes up a layer and on any import cycle between modules.
 * docs/architecture.md draws the same stack.
 */
const LAYERS = [
  ['errors.ts', 'version.ts', 'log.ts', 'log-throttle.ts', 'lifecycle.ts', 'open-files.ts'],
  ['identity'],
  ['config'],
  ['p2p'],
  ['stun'],
  ['http'],
  ['services'],
  ['rpc'],
  ['discovery'],
  ['relay'],
  ['traversal'],
  ['gateway'],
  ['access'],
  ['node'],
  ['browser'],
  ['ui'],
  ['daemon'],
  ['client'],
  ['testing'],
  ['cli'],
  ['index.ts'],
]

const esc = (s) => s.replace(/[.]/g, '\\.')
const pathOf = (names) => `^src/(${names.map(esc).join('|')})(/|$)`

const upward = LAYERS.slice(0, -1).map((names, i) => ({
  name: `layer-${names[0].replace('.ts', '')}`,
  comment: `${names.join(', ')} may not import from a layer above it`,
  severity: 'error',
  from: { path: pathOf(names) },
  to: { path: pathOf(LAYERS.slice(i + 1).flat()) },
}))

/** Sibling parts that must not lean on each other. */
const apart = (name, from, to, comment) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } })

module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'no import cycles between modules', severity: 'error', from: {}, to: { circular: true } },
    ...upward,
    apart('relay-client-server', '^src/relay/client/', '^src/relay/server/', 'the node side of relaying does not use the relay server'),
    apart('relay-server-client', '^src/relay/server/', '^src/relay/client/', 'the relay server does not use the node side'),
    apart('p2p-patches', '^src/p2p/patches/', '^src/p2p/(?!patches/)', 'each libp2p patch stands alone'),
    apart('punch-up', '^src/traversal/punch/', '^src/traversal/(net-report|upgrade)/', 'punching knows nothing of NAT reports or upgrades'),
    apart('net-report-up', '^src/traversal/net-report/', '^src/traversal/upgrade/', 'NAT reports know nothing of upgrades'),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    exclude: { path: '\\.d\\.ts$' },
  },
}
