/**
 * NAT-lab helpers: network namespaces, a bridge, two nftables NAT routers and the processes run inside them.
 *
 * @packageDocumentation
 */
export type { ConntrackEntry, Tuple } from './conntrack.ts'
export { createLab, type Lab, type LabHost, type LabOptions, labSupport } from './lab.ts'
export { type Counter, LAB_TABLE } from './nft.ts'
export { pinnedNode } from './node-bin.ts'
export { cleanupLeftovers, LAB_NAME_ROOT, listNamespaces, newLabPrefix } from './registry.ts'
export { NAT_KINDS, type NatKind, PUBLIC_CIDR, publicHostAddress, ROUTERS, type RouterName } from './topology.ts'
