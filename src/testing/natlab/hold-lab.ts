/**
 * Builds a lab, prints its namespace prefix as JSON and then waits (at most 60 s). Tests kill it with a signal to prove
 * that labs are torn down when their process dies, or that {@link cleanupLeftovers} removes what a SIGKILL left.
 *
 * @packageDocumentation
 */
import { createLab } from './lab.ts'

const lab = await createLab({ natA: 'cone', natB: 'symmetric' })
process.stdout.write(`${JSON.stringify({ type: 'up', prefix: lab.prefix, namespaces: lab.namespaces() })}\n`)
setTimeout(() => void lab.close(), 60_000)
