/** A NAT lab per describe block (built and torn down by before/after hooks), and whether the lab can run here. */
import { after, before } from 'node:test'
import { createLab, type Lab, type LabOptions, labSupport, type NatKind } from '../../src/testing/natlab/index.ts'
import { startLabStun } from '../../src/testing/natlab/udx-direct-run.ts'
import { startLabRelay } from '../../src/testing/natlab/upgrade-run.ts'

const support = await labSupport()

/** `false` when the lab can be built here, else the reason to skip (for `describe(…, { skip })`). */
export const labSkip: false | string = support.ok ? false : `NAT lab unavailable: ${support.reason}`

/**
 * Registers before/after hooks that build a lab with public hosts `relay` and `relay2`, each running a STUN responder,
 * and tear it down; returns a getter for the lab.
 */
export function useLab(natA: NatKind, natB: NatKind, extra: Omit<LabOptions, 'natA' | 'natB'> = {}): () => Lab {
  let lab: Lab | undefined
  before(async () => {
    lab = await createLab({ publicHosts: ['relay', 'relay2'], ...extra, natA, natB })
    await Promise.all([startLabStun(lab, 'relay'), startLabStun(lab, 'relay2')])
  })
  after(async () => {
    await lab?.close()
  })
  return () => lab!
}

/**
 * Like {@link useLab}, but host `relay` runs a Warren relay (circuit relay v2 on TCP 4001, STUN on 3478) and `relay2`
 * a STUN responder; the getter also returns the relay's multiaddr.
 */
export function useRelayLab(natA: NatKind, natB: NatKind): () => { lab: Lab; relayAddr: string } {
  let lab: Lab | undefined
  let relayAddr = ''
  before(async () => {
    lab = await createLab({ publicHosts: ['relay', 'relay2'], natA, natB })
    ;[relayAddr] = await Promise.all([startLabRelay(lab, 'relay'), startLabStun(lab, 'relay2')])
  })
  after(async () => {
    await lab?.close()
  })
  return () => ({ lab: lab!, relayAddr })
}
